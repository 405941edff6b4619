//! The self-contained HTML report (`--report`, `stampede report`): one file, inline CSS, inline
//! SVG charts drawn here (no chart library, no network request), light and dark, printable.
//! It is made from the summary JSON (as a value), so a report can be made again later from a
//! `--summary-json` file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::stats::{hdr, new_hist};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn st<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1000.0)
}

const COLOURS: [&str; 8] = [
    "#2f6fde", "#e0662b", "#2a9d4b", "#b8339a", "#8a6d00", "#0a8f9e", "#c43b3b", "#6b5bd6",
];

#[derive(Default)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// Drawn dashed: a series that often lies on another one (active requests on VUs).
    dashed: bool,
}

/// A line chart; `right` is drawn dashed against its own axis on the right; `base` (the
/// baseline's series of the same names) thin and dotted in the matching colours.
fn chart(
    title: &str,
    unit: &str,
    series: &[Series],
    right: Option<(&str, &Series)>,
    log_x: bool,
    base: &[Series],
) -> String {
    let (w, h, l, r, t, b) = (760.0, 240.0, 76.0, 56.0, 28.0, 30.0);
    let all: Vec<(f64, f64)> = series
        .iter()
        .chain(base)
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let n: usize = series.iter().map(|s| s.points.len()).sum();
    let mut o = String::new();
    let _ = write!(
        o,
        "<figure class=\"chart\" data-points=\"{n}\"><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    if all.is_empty() {
        o.push_str("<text x=\"20\" y=\"60\" class=\"muted\">no data</text></svg></figure>");
        return o;
    }
    let tx = |x: f64| if log_x { x.max(1e-9).log10() } else { x };
    // The right-axis series shares the x axis: its points count for its range.
    let xs = || {
        all.iter()
            .map(|p| p.0)
            .chain(right.iter().flat_map(|(_, s)| s.points.iter().map(|p| p.0)))
            .map(tx)
    };
    let (xmin, xmax) = x_range(
        xs().fold(f64::INFINITY, f64::min),
        xs().fold(f64::NEG_INFINITY, f64::max),
        log_x,
    );
    // The y axis in the unit shown, cut at round values (1, 2, 2.5 or 5 × 10^k).
    let shown = match unit {
        "ms" => 1000.0,
        "%" => 100.0,
        _ => 1.0,
    };
    let top = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-12) * shown * 1.02;
    let (step, parts) = nice_axis(top);
    let ymax = step * parts as f64 / shown;
    let px = |x: f64| l + (tx(x) - xmin) / (xmax - xmin) * (w - l - r);
    let py = |y: f64, m: f64| h - b - y / m * (h - t - b);
    // Axes and grid.
    for i in 0..=parts {
        let y = ymax * i as f64 / parts as f64;
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{l}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"ax\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - r,
            py(y, ymax),
            py(y, ymax),
            l - 4.0,
            py(y, ymax) + 4.0,
            esc(&tick_label(step * i as f64, step, unit))
        );
    }
    // Time ticks at round steps (sub-second ones on a short run); percentile ticks evenly over
    // the log scale.
    let xticks: Vec<(f64, String)> = if log_x {
        (0..=4)
            .map(|i| {
                let xv = xmin + (xmax - xmin) * i as f64 / 4.0;
                (xv, format!("p{}", fmt_pct(100.0 - 100.0 / 10f64.powf(xv))))
            })
            .collect()
    } else {
        let step = time_step(xmax - xmin);
        let first = (xmin / step - 1e-9).ceil() as i64;
        let last = (xmax / step + 1e-9).floor() as i64;
        (first..=last)
            .map(|k| {
                let xv = k as f64 * step;
                (xv, tick_label(xv, step, "s"))
            })
            .collect()
    };
    for (xv, label) in xticks {
        let xp = l + (xv - xmin) / (xmax - xmin) * (w - l - r);
        let _ = write!(
            o,
            "<text class=\"ax\" x=\"{xp:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            h - 10.0,
            esc(&label)
        );
    }
    let mut legend = String::new();
    for s in base {
        let i = series.iter().position(|x| x.name == s.name).unwrap_or(0);
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1, ymax)))
            .collect();
        let _ = write!(
            o,
            "<polyline class=\"series base\" data-n=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-opacity=\"0.55\" stroke-dasharray=\"2 3\" stroke-width=\"1.4\" points=\"{}\"><title>{} (baseline)</title></polyline>",
            s.points.len(),
            pts.join(" "),
            esc(&s.name)
        );
    }
    if !base.is_empty() {
        legend.push_str("<span><i class=\"dot\"></i>baseline (dotted)</span>");
    }
    for (i, s) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1, ymax)))
            .collect();
        if let [p] = s.points.as_slice() {
            // One point draws no line: a dot.
            let _ = write!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>",
                px(p.0),
                py(p.1, ymax)
            );
        }
        let _ = write!(
            o,
            "<polyline class=\"series\" data-n=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"1.8\"{} points=\"{}\"><title>{}</title></polyline>",
            s.points.len(),
            if s.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            pts.join(" "),
            esc(&s.name)
        );
        let _ = write!(
            legend,
            "<span><i style=\"background:{c}\"></i>{}</span>",
            esc(&s.name)
        );
    }
    if let Some((runit, s)) = right {
        let m = s.points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.08;
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1, m)))
            .collect();
        let _ = write!(
            o,
            "<polyline class=\"series right\" data-n=\"{}\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline><text class=\"ax\" x=\"{}\" y=\"{}\">{:.0} {}</text>",
            s.points.len(),
            pts.join(" "),
            esc(&s.name),
            w - r + 4.0,
            py(m / 1.08, m) + 4.0,
            m / 1.08,
            esc(runit)
        );
        let _ = write!(
            legend,
            "<span><i class=\"dash\"></i>{} (right axis)</span>",
            esc(&s.name)
        );
    }
    let _ = write!(o, "</svg><div class=\"legend\">{legend}</div></figure>");
    o
}

/// The x axis' range from the points' extremes. Time: one instant only (a run shorter than
/// its timeline interval has one point, in the middle of what it lasted) spans from 0 to twice
/// it, the run's length, so that its ticks are sub-second ones, not a nanosecond's.
fn x_range(min: f64, max: f64, log_x: bool) -> (f64, f64) {
    if !log_x && max - min < 1e-6 {
        return if min > 0.0 {
            (0.0, 2.0 * min)
        } else {
            (min - 0.5, min + 0.5)
        };
    }
    (min, max.max(min + 1e-9))
}

/// A time tick step of 1, 2 or 5 × 10^k seconds (0.02 s, 0.05 s, 0.1 s, …, 20 s, 50 s) that
/// cuts `range` into at most six parts.
fn time_step(range: f64) -> f64 {
    let raw = (range / 6.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

fn fmt_pct(p: f64) -> String {
    let s = format!("{p:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A grid step of 1, 2, 2.5 or 5 × 10^k that cuts `0..max` into at most five parts, and how
/// many parts reach `max`.
fn nice_axis(max: f64) -> (f64, usize) {
    let raw = (max / 5.0).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let parts = ((max / step) * (1.0 - 1e-9)).ceil().max(1.0) as usize;
    (step, parts)
}

/// A tick's label `v` (already in the unit shown) with as many decimals as `step` needs.
fn tick_label(v: f64, step: f64, unit: &str) -> String {
    let decimals = (0..6)
        .find(|d| {
            let x = step * 10f64.powi(*d);
            (x - x.round()).abs() < 1e-6 * x.max(1.0)
        })
        .unwrap_or(6) as usize;
    let u = match unit {
        "%" => " %".to_string(),
        u => format!(" {u}"),
    };
    format!("{v:.decimals$}{u}")
}

/// A tile of a byte count (more is neither better nor worse: not highlighted as worse).
fn byte_tile(
    label: &'static str,
    n: u64,
    id: &'static str,
) -> (&'static str, f64, String, &'static str, bool) {
    (
        label,
        n as f64,
        crate::report::summary::bytes_text(n),
        id,
        true,
    )
}

/// The one population of every latency figure on the page, in words.
fn population(s: &Value) -> String {
    match s["failures"].as_u64().unwrap_or(0) {
        0 => "Latency of successful requests (none failed), as in the text summary and thresholds."
            .into(),
        n => format!(
            "Latency of successful requests only ({n} failed request{} excluded), as in the text summary and thresholds; every request's is in the summary JSON (latency_all_s).",
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// Tile figures of a summary: (label, value, text, id, higher is better).
fn tile_figures(s: &Value) -> Vec<(&'static str, f64, String, &'static str, bool)> {
    let lat = &s["latency_s"];
    let iv = arr(&s["timeline"], "intervals");
    let peak_vus = iv.iter().map(|i| num(i, "vus")).fold(0.0, f64::max);
    let b = &s["bytes"];
    let bytes = |k: &str| b[k].as_u64().unwrap_or(0);
    vec![
        (
            "requests",
            num(s, "requests"),
            format!("{}", s["requests"].as_u64().unwrap_or(0)),
            "tile-requests",
            true,
        ),
        (
            "req/s",
            num(s, "rps"),
            format!("{:.1}", num(s, "rps")),
            "tile-rps",
            true,
        ),
        (
            "error %",
            num(s, "error_rate"),
            format!("{:.2} %", num(s, "error_rate") * 100.0),
            "tile-errors",
            false,
        ),
        (
            "p50",
            num(lat, "p50"),
            ms(num(lat, "p50")),
            "tile-p50",
            false,
        ),
        (
            "p95",
            num(lat, "p95"),
            ms(num(lat, "p95")),
            "tile-p95",
            false,
        ),
        (
            "p99",
            num(lat, "p99"),
            ms(num(lat, "p99")),
            "tile-p99",
            false,
        ),
        (
            "peak VUs",
            peak_vus,
            format!("{peak_vus:.0}"),
            "tile-vus",
            true,
        ),
        byte_tile("sent on the wire", bytes("wire_sent"), "tile-sent"),
        byte_tile(
            "received on the wire",
            bytes("wire_received"),
            "tile-received",
        ),
        byte_tile("request bodies", bytes("body_sent"), "tile-body-sent"),
        byte_tile(
            "response bodies",
            bytes("body_received"),
            "tile-body-received",
        ),
    ]
}

/// The change of a figure against the baseline's, highlighted when it got worse.
fn change_html(cur: f64, base: f64, base_text: &str, higher_better: bool) -> String {
    let (pct, worse) = if base == 0.0 {
        (
            if cur == 0.0 {
                "±0".to_string()
            } else {
                "new".to_string()
            },
            false,
        )
    } else {
        let d = (cur - base) / base;
        let worse = if higher_better { d < -0.05 } else { d > 0.05 };
        (format!("{:+.1} %", d * 100.0), worse)
    };
    format!(
        "<small class=\"delta{}\">baseline {} ({pct})</small>",
        if worse { " worse" } else { "" },
        esc(base_text)
    )
}

/// A baseline to show a run against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Baseline<'a> {
    /// Its summary JSON.
    pub(crate) summary: &'a Value,
    /// The regression tolerance of its comparison (0.1 = 10 %), as `stampede compare`'s.
    pub(crate) tolerance: f64,
}

/// The comparison with the baseline, as `stampede compare` judges it: whether it regressed,
/// the verdict's words and the regressed figures (HTML).
fn baseline_verdict(s: &Value, b: Baseline<'_>) -> (bool, String, String) {
    let tol = format!("{:.0} %", b.tolerance * 100.0);
    match crate::report::ci::compare(b.summary, s, b.tolerance) {
        Ok(c) if c.regressed() => {
            let mut items = Vec::new();
            for r in &c.rows {
                for d in r.deltas.iter().filter(|d| d.regression) {
                    items.push(format!(
                        "<li><b>{}</b> {}: {} → {} ({})</li>",
                        esc(&r.name),
                        d.figure,
                        crate::report::ci::fig_text(d.figure, d.base),
                        crate::report::ci::fig_text(d.figure, d.cur),
                        crate::report::ci::change_text(d)
                    ));
                }
            }
            (
                true,
                format!("REGRESSION against the baseline (beyond {tol})"),
                format!(
                    "<p>as <code>stampede compare</code> judges it (exit code 3):</p><ul id=\"regressions\">{}</ul>",
                    items.join("")
                ),
            )
        }
        Ok(_) => (
            false,
            format!("no regression against the baseline (beyond {tol})"),
            "<p>as <code>stampede compare</code> judges it (exit code 0)</p>".into(),
        ),
        Err(e) => (
            false,
            "not comparable with the baseline".into(),
            format!("<p>{}</p>", esc(&e.to_string())),
        ),
    }
}

/// The report of a summary JSON document; `exit_code` is the run's. With a baseline summary,
/// the tiles and the per-name table show the baseline's figures beside and the change, and
/// the verdict of the comparison stands beside the thresholds'.
pub(crate) fn render(s: &Value, exit_code: u8, base: Option<Baseline<'_>>) -> String {
    let baseline = base.map(|b| b.summary);
    let mut o = String::with_capacity(64 * 1024);
    let run_id = st(s, "run_id");
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>stampede report {}</title><style>{CSS}</style></head><body><h1>stampede report <code>{}</code></h1>",
        esc(run_id),
        esc(run_id)
    );
    // The verdict first.
    let ths = arr(s, "thresholds");
    let crossed = ths.iter().filter(|t| t["ok"] != Value::Bool(true)).count();
    let interrupted = s["interrupted"] == Value::Bool(true);
    let (cls, text) = if crossed > 0 {
        (
            "bad",
            format!("{crossed} of {} thresholds crossed", ths.len()),
        )
    } else if interrupted {
        ("warn", "interrupted".to_string())
    } else if ths.is_empty() {
        ("ok", "passed (no thresholds)".to_string())
    } else {
        let n = ths.len();
        (
            "ok",
            format!("{n} threshold{} passed", if n == 1 { "" } else { "s" }),
        )
    };
    let (regressed, versus, detail) = match base {
        Some(b) => {
            let (r, v, d) = baseline_verdict(s, b);
            (r, format!("; <span id=\"baseline-verdict\">{v}</span>"), d)
        }
        None => (false, String::new(), String::new()),
    };
    let cls = if regressed { "bad" } else { cls };
    let _ = write!(
        o,
        "<section id=\"verdict\" class=\"verdict {cls}\"><h2>Verdict: {text}{versus}</h2><p>exit code <b id=\"exit-code\">{exit_code}</b> (thresholds)</p>{detail}"
    );
    if !ths.is_empty() {
        o.push_str("<table id=\"thresholds\"><thead><tr><th>threshold</th><th>limit</th><th>actual</th><th>margin</th><th>result</th></tr></thead><tbody>");
        for t in ths {
            let ok = t["ok"] == Value::Bool(true);
            let unit = st(t, "unit");
            let actual = match (
                t["actual"].as_f64(),
                t.get("reason").and_then(Value::as_str),
            ) {
                (None, Some(r)) => r.to_string(),
                (a, _) => crate::report::ci::actual_text(a, unit),
            };
            let limit = t["limit"]
                .as_f64()
                .map(|l| crate::report::ci::actual_text(Some(l), unit))
                .unwrap_or_default();
            let margin = t["margin"]
                .as_f64()
                .map(|m| {
                    let sign = if m < 0.0 { "−" } else { "+" };
                    format!(
                        "{sign}{}",
                        crate::report::ci::actual_text(Some(m.abs()), unit)
                    )
                })
                .unwrap_or_else(|| "n/a".into());
            let _ = write!(
                o,
                "<tr class=\"{}\"><td><code>{}</code></td><td class=\"num limit\">{}</td><td class=\"num actual\">{}</td><td class=\"num margin\">{}</td><td>{}</td></tr>",
                if ok { "ok" } else { "bad" },
                esc(st(t, "threshold")),
                esc(&limit),
                esc(&actual),
                esc(&margin),
                if ok { "ok" } else { "crossed" }
            );
        }
        o.push_str("</tbody></table>");
    }
    let checks = arr(s, "checks");
    if !checks.is_empty() {
        let (p, f) = checks.iter().fold((0, 0), |a, c| {
            (
                a.0 + c["passes"].as_u64().unwrap_or(0),
                a.1 + c["fails"].as_u64().unwrap_or(0),
            )
        });
        let _ = write!(
            o,
            "<p>checks: {p} passed, <b class=\"{}\">{f} failed</b></p>",
            if f > 0 { "badtext" } else { "" }
        );
    }
    o.push_str("</section>");
    o.push_str(&slo_section(s));
    // Metadata and tiles.
    let meta = &s["meta"];
    let _ = write!(
        o,
        "<section id=\"run\"><h2>Run</h2><dl class=\"meta\"><dt>stampede</dt><dd id=\"meta-version\">{}</dd><dt>run id</dt><dd><code>{}</code></dd><dt>started</dt><dd id=\"meta-start\">{}</dd><dt>ended</dt><dd id=\"meta-end\">{}</dd><dt>duration</dt><dd>{:.1} s{}</dd><dt>generators</dt><dd id=\"meta-generators\">{}</dd>",
        esc(meta["version"].as_str().unwrap_or("?")),
        esc(run_id),
        esc(st(meta, "started_at")),
        esc(st(meta, "ended_at")),
        num(s, "duration_s"),
        if interrupted { " (interrupted)" } else { "" },
        s["generators"].as_u64().unwrap_or(1)
    );
    let cmd: Vec<&str> = arr(meta, "command_line")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !cmd.is_empty() {
        let _ = write!(
            o,
            "<dt>command line</dt><dd><code id=\"meta-command\">{}</code></dd>",
            esc(&cmd.join(" "))
        );
    }
    o.push_str("</dl>");
    if !meta["config"].is_null() {
        let _ = write!(
            o,
            "<details><summary>Resolved scenario (secrets redacted)</summary><pre id=\"meta-config\">{}</pre></details>",
            esc(&serde_json::to_string_pretty(&meta["config"]).unwrap_or_default())
        );
    }
    let base_tiles = baseline.map(tile_figures);
    o.push_str("<div class=\"tiles\">");
    for (i, (k, v, text, id, hb)) in tile_figures(s).into_iter().enumerate() {
        let delta = base_tiles
            .as_ref()
            .and_then(|b| b.get(i))
            .map(|b| change_html(v, b.1, &b.2, hb))
            .unwrap_or_default();
        let _ = write!(
            o,
            "<div class=\"tile\"><span>{k}</span><b id=\"{id}\">{}</b>{delta}</div>",
            esc(&text)
        );
    }
    let _ = write!(
        o,
        "</div><p class=\"muted\">{}</p></section>",
        population(s)
    );
    // Charts over time (the baseline's series, when given, dotted beside them).
    let cur = TimeSeries::of(s);
    let base = baseline.map(TimeSeries::of);
    o.push_str("<section><h2>Over time</h2><div class=\"charts\">");
    let b = |f: fn(&TimeSeries) -> Vec<Series>| base.as_ref().map(f).unwrap_or_default();
    o.push_str(&chart(
        "Requests per second by name",
        "req/s",
        &cur.rps(),
        None,
        false,
        &b(TimeSeries::rps),
    ));
    let load = Series {
        name: "VUs".into(),
        points: cur.vus.clone(),
        ..Series::default()
    };
    o.push_str(&chart(
        "Latency p50 / p95 / p99 (successful requests) with VUs",
        "ms",
        &cur.latency(),
        Some(("VUs", &load)),
        false,
        &b(TimeSeries::latency),
    ));
    o.push_str(&chart(
        "Failures per second by error type",
        "/s",
        &cur.errors(),
        None,
        false,
        &b(TimeSeries::errors),
    ));
    o.push_str(&chart(
        "VUs and active requests (most at once)",
        "",
        &cur.load(),
        None,
        false,
        &b(TimeSeries::load),
    ));
    o.push_str(&chart(
        "Iterations and dropped iterations per second",
        "/s",
        &cur.iterations(),
        None,
        false,
        &b(TimeSeries::iterations),
    ));
    if cur.open {
        o.push_str(&chart(
            "Open model: intended vs achieved rate",
            "/s",
            &cur.rate(),
            None,
            false,
            &b(TimeSeries::rate),
        ));
        o.push_str(&chart(
            "Open model: start lag (coordinated omission made visible)",
            "ms",
            &cur.lag(),
            None,
            false,
            &b(TimeSeries::lag),
        ));
    }
    o.push_str(&chart(
        "Latency percentile spectrum p0 … p99.999 (successful requests)",
        "ms",
        &cur.spectrum(),
        None,
        true,
        &b(TimeSeries::spectrum),
    ));
    o.push_str("</div></section>");
    // Per-name table.
    o.push_str(
        "<section><h2>Requests by name</h2><table id=\"by-name\" class=\"sortable\"><thead><tr>",
    );
    for h in [
        "scenario", "name", "requests", "failures", "req/s", "min", "mean", "p50", "p90", "p95",
        "p99", "max",
    ] {
        let _ = write!(o, "<th>{h}</th>");
    }
    o.push_str("</tr></thead><tbody>");
    for r in arr(s, "by_name") {
        let l = &r["latency_s"];
        // No successful request: no latency to show (zeros would read as "fast").
        let none = r["requests"].as_u64() == r["failures"].as_u64();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{} {}</td><td class=\"num requests\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td>",
            esc(st(r, "scenario")),
            esc(st(r, "method")),
            esc(st(r, "name")),
            r["requests"].as_u64().unwrap_or(0),
            r["failures"].as_u64().unwrap_or(0),
            num(r, "rps")
        );
        for k in ["min", "mean", "p50", "p90", "p95", "p99", "max"] {
            let text = if none { "-".into() } else { ms(num(l, k)) };
            let _ = write!(
                o,
                "<td class=\"num {k}\" data-v=\"{}\">{text}</td>",
                num(l, k)
            );
        }
        o.push_str("</tr>");
    }
    let _ = write!(
        o,
        "</tbody></table><p class=\"muted\" id=\"population\">{} Click a heading to sort.</p></section>",
        population(s)
    );
    // Status codes, errors, checks, export (with a baseline: its counts beside).
    let codes_of = |s: &Value| {
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        for r in arr(s, "by_name") {
            if let Some(m) = r["status_codes"].as_object() {
                for (k, v) in m {
                    *codes.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
                }
            }
        }
        codes
    };
    let codes = codes_of(s);
    let base_codes = baseline.map(codes_of);
    let share = |n: u64, of: &BTreeMap<String, u64>| {
        let t: u64 = of.values().sum();
        if t == 0 { 0.0 } else { n as f64 / t as f64 }
    };
    o.push_str("<section class=\"cols\"><div><h2>Status codes</h2><table id=\"status-codes\">");
    if base_codes.is_some() {
        o.push_str("<tr><th>code</th><th>count</th><th>baseline</th></tr>");
    }
    let mut keys: Vec<&String> = codes.keys().collect();
    if let Some(b) = &base_codes {
        keys.extend(b.keys().filter(|k| !codes.contains_key(*k)));
        keys.sort();
    }
    for k in keys {
        let v = codes.get(k).copied().unwrap_or(0);
        let _ = write!(o, "<tr><td>{}</td><td class=\"num\">{v}</td>", esc(k));
        if let Some(b) = &base_codes {
            let bv = b.get(k).copied().unwrap_or(0);
            // The share of responses, so runs of different lengths compare; 2xx/3xx up is good.
            let good = k.starts_with('2') || k.starts_with('3');
            let _ = write!(
                o,
                "<td class=\"num\">{}</td>",
                change_html(share(v, &codes), share(bv, b), &bv.to_string(), good)
            );
        }
        o.push_str("</tr>");
    }
    o.push_str("</table></div><div><h2>Errors</h2><table>");
    if let Some(m) = s["errors"].as_object() {
        for (k, v) in m {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(k),
                v
            );
        }
    }
    o.push_str("</table></div><div><h2>Checks</h2><table id=\"checks\"><tr><th>check</th><th>passes</th><th>fails</th>");
    if baseline.is_some() {
        o.push_str("<th>baseline fails</th>");
    }
    o.push_str("</tr>");
    let rate = |c: &Value| {
        let (p, f) = (num(c, "passes"), num(c, "fails"));
        if p + f == 0.0 { 0.0 } else { f / (p + f) }
    };
    for c in arr(s, "checks") {
        let _ = write!(
            o,
            "<tr><td>{}: {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            esc(st(c, "request")),
            esc(st(c, "name")),
            c["passes"],
            c["fails"]
        );
        if let Some(b) = baseline {
            let same = arr(b, "checks")
                .iter()
                .find(|x| x["name"] == c["name"] && x["request"] == c["request"]);
            let cell = match same {
                Some(bc) => change_html(
                    rate(c),
                    rate(bc),
                    &format!(
                        "{} of {}",
                        bc["fails"],
                        num(bc, "passes") + num(bc, "fails")
                    ),
                    false,
                ),
                None => "<small class=\"delta\">not in the baseline</small>".to_string(),
            };
            let _ = write!(o, "<td class=\"num\">{cell}</td>");
        }
        o.push_str("</tr>");
    }
    o.push_str("</table></div><div><h2>Export</h2><table>");
    for e in arr(s, "export") {
        // Worded as in the text summary: what the numbers count, what was NOT delivered, why.
        let unit = if st(e, "unit") == "data_points" {
            "data points"
        } else {
            "samples"
        };
        let _ = write!(
            o,
            "<tr><td><code>{}</code>: {} {unit} delivered, {} {unit} NOT delivered ({})</td></tr>",
            esc(st(e, "exporter")),
            e["delivered"],
            e["not_delivered"],
            esc(st(e, "detail"))
        );
    }
    o.push_str("</table></div></section>");
    let _ = writeln!(o, "<script>{JS}</script></body></html>");
    o
}

/// The run's SLO outcome beyond the threshold table (issue 14): the threshold that aborted the
/// run, and a capacity search's verdict with its table of steps. Empty when neither exists.
fn slo_section(s: &Value) -> String {
    let mut o = String::new();
    if let Some(a) = s.get("aborted").filter(|a| a.is_object()) {
        let _ = write!(
            o,
            "<section id=\"aborted\" class=\"verdict bad\"><h2>Aborted</h2><p>threshold <code>{}</code> crossed at {:.1} s (abort_on_fail); the run stopped there.</p></section>",
            esc(st(a, "threshold")),
            num(a, "at_s")
        );
    }
    let Some(c) = s.get("capacity").filter(|c| c.is_object()) else {
        return o;
    };
    let rate = |v: &Value| v.as_f64().map_or("–".to_string(), |r| format!("{r:.1}/s"));
    let verdict = match (c["max_rate"].as_f64(), st(c, "stopped_by")) {
        (_, "generator") => {
            "no maximum claimed: the generator could not keep up (add VUs or generators)"
                .to_string()
        }
        (Some(m), by) => format!(
            "max sustainable rate <b id=\"max-rate\">{m:.1}/s</b> (first failing {}; ended by {})",
            rate(&c["first_failing_rate"]),
            esc(by)
        ),
        (None, by) => format!("no rate met the SLO (ended by {})", esc(by)),
    };
    let slo: Vec<String> = arr(c, "slo")
        .iter()
        .map(|t| format!("<code>{}</code>", esc(t.as_str().unwrap_or_default())))
        .collect();
    let _ = write!(
        o,
        "<section id=\"capacity\"><h2>Capacity search</h2><p>{verdict}</p><p>SLO: {} · sent and achieved (inside each step's window) ≥ 98% of the intended rate · no steady rise across a step</p><table><thead><tr><th>phase</th><th>intended</th><th>achieved</th><th>p50</th><th>p95</th><th>p99</th><th>errors</th><th>dropped</th><th>verdict</th></tr></thead><tbody>",
        slo.join(", ")
    );
    for st_ in arr(c, "steps") {
        let v = st(st_, "verdict");
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{:.1}/s</td><td class=\"num\">{:.1}/s</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}%</td><td class=\"num\">{}</td><td title=\"{}\">{}</td></tr>",
            if v == "pass" { "ok" } else { "bad" },
            esc(st(st_, "phase")),
            num(st_, "intended_rate"),
            num(st_, "achieved_rate"),
            ms(num(st_, "p50_s")),
            ms(num(st_, "p95_s")),
            ms(num(st_, "p99_s")),
            num(st_, "error_rate") * 100.0,
            num(st_, "dropped_iterations"),
            esc(st(st_, "reason")),
            if st_["rechecked"].as_bool() == Some(true) {
                format!("{}, re-checked", esc(v))
            } else {
                esc(v)
            }
        );
    }
    o.push_str("</tbody></table></section>");
    o
}

/// The series of a summary's timeline, in the units the charts show.
struct TimeSeries {
    rps: BTreeMap<String, Vec<(f64, f64)>>,
    errors: BTreeMap<String, Vec<(f64, f64)>>,
    pct: [Vec<(f64, f64)>; 3],
    vus: Vec<(f64, f64)>,
    active: Vec<(f64, f64)>,
    iterations: Vec<(f64, f64)>,
    dropped: Vec<(f64, f64)>,
    intended: Vec<(f64, f64)>,
    achieved: Vec<(f64, f64)>,
    lag_mean: Vec<(f64, f64)>,
    lag_max: Vec<(f64, f64)>,
    all: Histogram<u64>,
    open: bool,
}

fn named(m: &BTreeMap<String, Vec<(f64, f64)>>) -> Vec<Series> {
    m.iter()
        .map(|(name, points)| Series {
            name: name.clone(),
            points: points.clone(),
            ..Series::default()
        })
        .collect()
}

fn series(parts: &[(&str, &Vec<(f64, f64)>)]) -> Vec<Series> {
    parts
        .iter()
        .map(|(n, p)| Series {
            name: n.to_string(),
            points: (*p).clone(),
            ..Series::default()
        })
        .collect()
}

impl TimeSeries {
    /// Reads the timeline; interval histograms are decoded with [`hdr::decode`] (an undecodable
    /// one counts as empty).
    fn of(s: &Value) -> TimeSeries {
        let iv = arr(&s["timeline"], "intervals");
        let step = s["timeline"]["interval_s"]
            .as_f64()
            .unwrap_or(1.0)
            .max(1e-6);
        let mut t = TimeSeries {
            rps: BTreeMap::new(),
            errors: BTreeMap::new(),
            pct: Default::default(),
            vus: Vec::new(),
            active: Vec::new(),
            iterations: Vec::new(),
            dropped: Vec::new(),
            intended: Vec::new(),
            achieved: Vec::new(),
            lag_mean: Vec::new(),
            lag_max: Vec::new(),
            all: new_hist(),
            open: false,
        };
        let names: Vec<String> = arr(&s["timeline"], "names")
            .iter()
            .map(|n| format!("{} {}", st(n, "method"), st(n, "name")))
            .collect();
        let mut h = new_hist();
        let mut prev_h = new_hist();
        let mut failed = new_hist();
        let duration = num(s, "duration_s");
        // A last interval shorter than half a step holds only the run's tail (requests in flight
        // at the end, finishing during the graceful stop): alone, its rates would spike or dip,
        // so it is folded into the interval before it.
        let fold_last = iv.len() >= 2 && {
            let t_last = num(&iv[iv.len() - 1], "t_s");
            duration > t_last && duration - t_last < step / 2.0
        };
        let (mut x, mut width) = (0.0, step);
        for (k, i) in iv.iter().enumerate() {
            let fold = fold_last && k + 1 == iv.len();
            // Rates over the part of the interval the run lasted (the last one is partial; at
            // least a tenth of an interval, so a sliver cannot spike).
            let w = if duration > num(i, "t_s") {
                (duration - num(i, "t_s")).clamp(step / 10.0, step)
            } else {
                step
            };
            let before = width;
            if fold {
                width += w;
            } else {
                // The middle of the part of the interval the run lasted.
                x = num(i, "t_s") + w / 2.0;
                width = w;
            }
            // A count over this interval as a rate; folded: added to the point before.
            let rate = |v: &mut Vec<(f64, f64)>, count: f64| match v.last_mut() {
                Some(p) if fold && p.0 == x => p.1 = (p.1 * before + count) / width,
                _ => v.push((x, count / width)),
            };
            // A figure that is the most at once (VUs, active requests, largest lag).
            let most = |v: &mut Vec<(f64, f64)>, value: f64| match v.last_mut() {
                Some(p) if fold && p.0 == x => p.1 = p.1.max(value),
                _ => v.push((x, value)),
            };
            // A figure that is a mean over time (the open model's rates), weighted by width.
            let mean = |v: &mut Vec<(f64, f64)>, value: f64| match v.last_mut() {
                Some(p) if fold && p.0 == x => p.1 = (p.1 * before + value * w) / width,
                _ => v.push((x, value)),
            };
            most(&mut t.vus, num(i, "vus"));
            most(&mut t.active, num(i, "active_requests"));
            h.reset();
            for n in arr(i, "by_name") {
                let key = n["n"]
                    .as_u64()
                    .and_then(|k| names.get(k as usize))
                    .cloned()
                    .unwrap_or_default();
                rate(t.rps.entry(key).or_default(), num(n, "requests"));
                if let Some(e) = n["errors"].as_object() {
                    for (k, c) in e {
                        rate(
                            t.errors.entry(k.clone()).or_default(),
                            c.as_f64().unwrap_or(0.0),
                        );
                    }
                }
                // An undecodable histogram counts as empty.
                let _ = hdr::decode_into(st(n, "histogram"), &mut h);
                // Failed requests are left out, as in the summary's latency.
                failed.reset();
                if hdr::decode_into(st(n, "failed_histogram"), &mut failed).is_ok() {
                    let _ = h.subtract(&failed);
                }
            }
            if !h.is_empty() {
                let _ = t.all.add(&h);
                if fold {
                    // The tail's latencies join the interval before's percentiles.
                    let _ = h.add(&prev_h);
                    for p in &mut t.pct {
                        if p.last().is_some_and(|p| p.0 == x) {
                            p.pop();
                        }
                    }
                }
                for (k, q) in [0.50, 0.95, 0.99].iter().enumerate() {
                    t.pct[k].push((x, h.value_at_quantile(*q) as f64 / 1e6));
                }
            }
            std::mem::swap(&mut h, &mut prev_h);
            let sc = arr(i, "scenarios");
            rate(
                &mut t.iterations,
                sc.iter().map(|v| num(v, "iterations")).sum::<f64>(),
            );
            rate(
                &mut t.dropped,
                sc.iter().map(|v| num(v, "dropped")).sum::<f64>(),
            );
            let open: Vec<&Value> = sc
                .iter()
                .filter(|v| v.get("intended_rate").is_some())
                .collect();
            if !open.is_empty() {
                t.open = true;
                mean(
                    &mut t.intended,
                    open.iter().map(|v| num(v, "intended_rate")).sum(),
                );
                mean(
                    &mut t.achieved,
                    open.iter().map(|v| num(v, "achieved_rate")).sum(),
                );
                // Weighted by the iterations each scenario started.
                let started: f64 = open.iter().map(|v| num(v, "achieved_rate")).sum();
                let lag = if started > 0.0 {
                    open.iter()
                        .map(|v| num(v, "start_lag_mean_s") * num(v, "achieved_rate"))
                        .sum::<f64>()
                        / started
                } else {
                    0.0
                };
                mean(&mut t.lag_mean, lag);
                most(
                    &mut t.lag_max,
                    open.iter()
                        .map(|v| num(v, "start_lag_max_s"))
                        .fold(0.0, f64::max),
                );
            }
        }
        t
    }

    fn rps(&self) -> Vec<Series> {
        named(&self.rps)
    }

    fn errors(&self) -> Vec<Series> {
        named(&self.errors)
    }

    fn latency(&self) -> Vec<Series> {
        series(&[
            ("p50", &self.pct[0]),
            ("p95", &self.pct[1]),
            ("p99", &self.pct[2]),
        ])
    }

    fn load(&self) -> Vec<Series> {
        // Against a slow target every VU has its request in flight: the lines coincide, so
        // the second one is dashed over the first.
        let mut s = series(&[("VUs", &self.vus), ("active requests", &self.active)]);
        s[1].dashed = true;
        s
    }

    fn iterations(&self) -> Vec<Series> {
        series(&[
            ("iterations/s", &self.iterations),
            ("dropped/s", &self.dropped),
        ])
    }

    fn rate(&self) -> Vec<Series> {
        series(&[("intended", &self.intended), ("achieved", &self.achieved)])
    }

    fn lag(&self) -> Vec<Series> {
        series(&[
            ("mean start lag", &self.lag_mean),
            ("max start lag", &self.lag_max),
        ])
    }

    /// The percentile spectrum from the exact histograms (x: 1/(1-q) on a log scale).
    fn spectrum(&self) -> Vec<Series> {
        let mut points = Vec::new();
        if !self.all.is_empty() {
            for q in [
                0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
            ] {
                points.push((1.0 / (1.0 - q), self.all.value_at_quantile(q) as f64 / 1e6));
            }
        }
        vec![Series {
            name: "latency".into(),
            points,
            ..Series::default()
        }]
    }
}

const CSS: &str = r#"
:root{--bg:#fff;--fg:#1b1d21;--muted:#6a6f78;--line:#dde1e6;--ok:#1e8e3e;--bad:#c5221f;--warn:#b06000;--tile:#f4f6f8}
@media (prefers-color-scheme:dark){:root{--bg:#15171a;--fg:#e6e8eb;--muted:#9aa0a8;--line:#30343a;--ok:#5bd17a;--bad:#ff6b62;--warn:#f3a74a;--tile:#1f2226}}
body{background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin:18px 0 8px}code{font-size:13px}
table{border-collapse:collapse;margin:6px 0}td,th{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left}
.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:var(--muted)}
.verdict{border-left:6px solid var(--ok);padding:4px 14px}.verdict.bad{border-color:var(--bad)}.verdict.warn{border-color:var(--warn)}
tr.bad td{color:var(--bad)}.badtext{color:var(--bad)}tr.ok td:last-child{color:var(--ok)}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{background:var(--tile);border-radius:6px;padding:8px 14px;min-width:110px}
.tile span{display:block;color:var(--muted);font-size:12px}.tile b{font-size:19px}
.charts{display:grid;grid-template-columns:1fr;gap:12px}.chart{margin:0}.chart svg{width:100%;height:auto}
figcaption{font-weight:600}.grid{stroke:var(--line)}.ax{fill:var(--muted);font-size:11px}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
small.delta{display:block;color:var(--muted);font-size:11px}small.delta.worse{color:var(--bad);font-weight:600}
.legend i.dash{border-top:2px dashed #888;height:0}.legend i.dot{border-top:2px dotted #888;height:0}
pre{white-space:pre-wrap;word-break:break-all;font-size:12px;background:var(--tile);padding:8px;border-radius:4px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px}
th{cursor:pointer}
@media print{body{margin:0;max-width:none}.chart{break-inside:avoid}th{cursor:auto}}
"#;

const JS: &str = r#"
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),d=th.dataset.d=th.dataset.d==='a'?'d':'a';
rows.sort(function(a,b){var x=a.cells[i],y=b.cells[i],u=parseFloat(x.dataset.v||x.textContent),v=parseFloat(y.dataset.v||y.textContent);
var c=isNaN(u)||isNaN(v)?x.textContent.localeCompare(y.textContent):u-v;return d==='a'?c:-c});rows.forEach(function(r){tb.appendChild(r)})})});
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline of 1 s intervals with `counts` requests each (10 ms each), in a run of
    /// `duration` seconds.
    fn timeline_summary(counts: &[u64], duration: f64) -> Value {
        let intervals: Vec<Value> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut h = new_hist();
                h.record_n(10_000, *n).unwrap();
                serde_json::json!({
                    "t_s": i as f64, "vus": 5, "active_requests": if i == 3 { 9 } else { 5 },
                    "by_name": [{ "n": 0, "requests": n, "histogram": hdr::encode(&h) }],
                    "scenarios": [{ "name": "s", "iterations": n, "dropped": 0 }],
                })
            })
            .collect();
        serde_json::json!({
            "duration_s": duration,
            "timeline": { "interval_s": 1.0, "names": [{ "scenario": "s", "name": "/", "method": "GET" }],
                          "intervals": intervals },
        })
    }

    /// The time axis' tick labels of a chart.
    fn time_ticks(svg: &str) -> Vec<String> {
        svg.split("text-anchor=\"middle\">")
            .skip(1)
            .filter_map(|t| t.split('<').next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_run_shorter_than_a_second_has_sub_second_time_ticks() {
        // 0.1 s in one 1 s interval: one point, in the middle of what the run lasted.
        let t = TimeSeries::of(&timeline_summary(&[30], 0.1));
        assert_eq!(t.rps["GET /"].len(), 1);
        assert!((t.rps["GET /"][0].0 - 0.05).abs() < 1e-9, "{:?}", t.rps);
        let svg = chart("r", "req/s", &named(&t.rps), None, false, &[]);
        assert_eq!(
            time_ticks(&svg),
            ["0.00 s", "0.02 s", "0.04 s", "0.06 s", "0.08 s", "0.10 s"]
        );
        // 0.35 s in 10 ms intervals.
        let mut v = timeline_summary(&[3; 35], 0.35);
        v["timeline"]["interval_s"] = 0.01.into();
        for (k, iv) in v["timeline"]["intervals"]
            .as_array_mut()
            .expect("intervals")
            .iter_mut()
            .enumerate()
        {
            iv["t_s"] = (k as f64 * 0.01).into();
        }
        let t = TimeSeries::of(&v);
        let svg = chart("r", "req/s", &named(&t.rps), None, false, &[]);
        assert_eq!(time_ticks(&svg), ["0.1 s", "0.2 s", "0.3 s"]);
        // Long runs keep whole seconds.
        let t = TimeSeries::of(&timeline_summary(&[5; 40], 40.0));
        let svg = chart("r", "req/s", &named(&t.rps), None, false, &[]);
        assert_eq!(time_ticks(&svg), ["10 s", "20 s", "30 s"]);
        assert_eq!(time_step(0.1076), 0.02);
        assert_eq!(time_step(39.0), 10.0);
    }

    #[test]
    fn a_short_last_interval_is_folded_into_the_one_before() {
        // 3.2 s: the last 0.2 s holds the tail of the requests in flight at 3 s.
        let t = TimeSeries::of(&timeline_summary(&[20, 25, 25, 5], 3.2));
        let rps = &t.rps["GET /"];
        assert_eq!(rps.len(), 3, "{rps:?}");
        assert_eq!(rps[1], (1.5, 25.0));
        // (25 + 5) requests over 1.2 s.
        assert_eq!(rps[2].0, 2.5);
        assert!((rps[2].1 - 25.0).abs() < 1e-9, "{rps:?}");
        assert_eq!(t.iterations.len(), 3);
        // The most at once keeps the tail's peak.
        assert_eq!(t.active.last(), Some(&(2.5, 9.0)));
        assert_eq!(t.pct[0].len(), 3);
        // All 75 requests are in the spectrum.
        assert_eq!(t.all.len(), 75);
        // A last interval of half a step or more stands on its own.
        let t = TimeSeries::of(&timeline_summary(&[20, 25, 25, 14], 3.6));
        let rps = &t.rps["GET /"];
        assert_eq!(rps.len(), 4, "{rps:?}");
        assert!((rps[3].1 - 14.0 / 0.6).abs() < 1e-9, "{rps:?}");
    }

    #[test]
    fn the_charts_leave_failed_requests_out_as_the_summary_does() {
        // 10 successes at 40 ms, 30 failures at 1 ms in one interval.
        let (mut all, mut failed) = (new_hist(), new_hist());
        all.record_n(40_000, 10).unwrap();
        all.record_n(1_000, 30).unwrap();
        failed.record_n(1_000, 30).unwrap();
        let s = serde_json::json!({
            "duration_s": 1.0,
            "timeline": { "interval_s": 1.0, "names": [{ "scenario": "s", "name": "/", "method": "GET" }],
                "intervals": [{ "t_s": 0.0, "vus": 1, "active_requests": 1, "scenarios": [],
                    "by_name": [{ "n": 0, "requests": 40, "failures": 30,
                        "histogram": hdr::encode(&all), "failed_histogram": hdr::encode(&failed) }] }] },
        });
        let t = TimeSeries::of(&s);
        assert_eq!(t.all.len(), 10);
        let p50 = t.pct[0][0].1;
        assert!((p50 - 0.04).abs() < 0.001, "p50 {p50}");
    }

    #[test]
    fn the_y_axis_is_cut_at_round_values() {
        assert_eq!(nice_axis(750.6), (200.0, 4));
        assert_eq!(nice_axis(5.7), (2.0, 3));
        assert_eq!(nice_axis(100.0), (20.0, 5));
        assert_eq!(nice_axis(31.3), (10.0, 4));
        assert_eq!(nice_axis(0.012), (0.0025, 5));
        assert_eq!(tick_label(600.0, 200.0, "req/s"), "600 req/s");
        assert_eq!(tick_label(7.5, 2.5, "ms"), "7.5 ms");
        assert_eq!(tick_label(0.005, 0.0025, "/s"), "0.0050 /s");
        assert_eq!(tick_label(40.0, 20.0, "%"), "40 %");
    }
}
