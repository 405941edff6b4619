//! The end-of-run summary: computed from the merged exact statistics (never from export
//! buckets), then rendered as a text table or JSON. The JSON shape is documented in
//! `docs/summary.schema.json`.
//!
//! Latency figures (`latency_s`, the table, latency thresholds) are over **successful**
//! requests: a refused connect or a fast 503 is judged by the error rate, not counted as a
//! fast response. `latency_all_s` keeps every request (the population of the exported
//! `http.client.request.duration` histogram). The text fits a width (columns are dropped or
//! names abbreviated when narrow; the JSON always has everything) and is coloured only when
//! asked ([`TextStyle`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::export::{Delivery, Unit, Waiting};
use crate::metrics::Folded;
use crate::outcome::ErrorKind;
use crate::scenario::plan::Plan;
use crate::stats::{Latency, RequestStats, WorkerStats, latency_of, merged_latency};
use crate::term::{Paint, abbreviate, host_port};
use crate::threshold::{Filter, Metric, Source};

/// One row of the per-name table.
#[derive(Clone, Debug, Serialize)]
pub struct NameRow {
    /// Request name (`url.template`).
    pub name: String,
    /// Method.
    pub method: String,
    /// Scenario.
    pub scenario: String,
    /// Requests sent.
    pub requests: u64,
    /// Requests with an error type.
    pub failures: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency of the successful requests, seconds (zeros if none succeeded).
    pub latency_s: Latency,
    /// Latency of every request, failures included, seconds.
    pub latency_all_s: Latency,
    /// Count by status code.
    pub status_codes: BTreeMap<String, u64>,
    /// The successful requests' latency histogram (µs), base64 HdrHistogram V2
    /// (`crate::stats::hdr`): what `stampede merge` and the coordinator add up exactly.
    pub latency_hdr: String,
    /// Every request's latency histogram (µs), the same form.
    pub latency_all_hdr: String,
    /// Octets on the wire and body bytes, both ways.
    pub bytes: ByteCounts,
}

/// What requests sent and received: octets on the wire (HTTP/1.1 heads, bodies and chunk
/// framing; HTTP/2 frames, see `Wire`; TLS records and TCP/IP not counted) and the bodies
/// alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ByteCounts {
    /// Octets written: requests' heads, bodies and framing.
    pub wire_sent: u64,
    /// Octets read: responses' heads, bodies and framing.
    pub wire_received: u64,
    /// Request body bytes.
    pub body_sent: u64,
    /// Response body bytes (after de-chunking).
    pub body_received: u64,
}

impl std::ops::AddAssign for ByteCounts {
    fn add_assign(&mut self, o: ByteCounts) {
        self.wire_sent = self.wire_sent.saturating_add(o.wire_sent);
        self.wire_received = self.wire_received.saturating_add(o.wire_received);
        self.body_sent = self.body_sent.saturating_add(o.body_sent);
        self.body_received = self.body_received.saturating_add(o.body_received);
    }
}

impl ByteCounts {
    fn of(r: &RequestStats) -> ByteCounts {
        ByteCounts {
            wire_sent: r.wire.sent,
            wire_received: r.wire.received,
            body_sent: r.bytes_out,
            body_received: r.bytes_in,
        }
    }
}

/// `n` bytes as a person reads them: `780 B`, `120.3 kB`, `4.25 MB` (powers of 1000).
pub(crate) fn bytes_text(n: u64) -> String {
    let b = n as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A check's totals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckRow {
    /// Check name.
    pub name: String,
    /// Request name.
    pub request: String,
    /// Scenario.
    pub scenario: String,
    /// Passes.
    pub passes: u64,
    /// Failures.
    pub fails: u64,
}

/// A scenario's iteration totals.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioRow {
    /// Name.
    pub name: String,
    /// Executor.
    pub executor: String,
    /// Completed iterations.
    pub iterations: u64,
    /// Dropped iterations (open model): `dropped_no_vu + dropped_generator`.
    pub dropped_iterations: u64,
    /// Dropped because no VU was free (the target is slow or VUs are too few).
    pub dropped_no_vu: u64,
    /// Dropped because stampede itself fell behind its schedule (paused, short of CPU).
    pub dropped_generator: u64,
    /// Iteration duration, seconds.
    pub iteration_duration_s: Latency,
    /// Open model: how late iterations started, seconds (p50/p99/max meaningful).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_lag_s: Option<Latency>,
    /// Iteration duration histogram (µs), base64 HdrHistogram V2.
    pub iteration_duration_hdr: String,
    /// Open model: start lag histogram (µs), base64 HdrHistogram V2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_lag_hdr: Option<String>,
    /// Open model with a duration: what happened inside the scenario's window (the capacity
    /// search's sent and achieved rates come from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowRow>,
}

/// An open-model scenario's window, `[start, start + duration]`: iterations started and
/// completed inside it, by the instant they happened (completions in the in-flight wait after
/// it are not counted).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowRow {
    /// The window's length, seconds (the scenario's duration).
    pub window_s: f64,
    /// Iterations started inside the window.
    pub started: u64,
    /// Iterations completed inside the window.
    pub completed: u64,
    /// When the first iteration completed, seconds after the start (absent: none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_completed_s: Option<f64>,
}

impl WindowRow {
    /// Adds another segment's window (the same length): counts add, the earliest first
    /// completion.
    pub fn merge(&mut self, o: &WindowRow) {
        self.window_s = self.window_s.max(o.window_s);
        self.started = self.started.saturating_add(o.started);
        self.completed = self.completed.saturating_add(o.completed);
        self.first_completed_s = match (self.first_completed_s, o.first_completed_s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What an exporter delivered, worded from its [`Delivery`] facts.
#[derive(Clone, Debug, Serialize)]
pub struct ExportRow {
    /// Exporter (e.g. `remote_write http://…/api/v1/write`, credentials removed).
    pub exporter: String,
    /// What the counts count: `samples` (remote-write) or `data_points` (OTLP).
    pub unit: Unit,
    /// Delivered.
    pub delivered: u64,
    /// Not delivered: dropped + rejected + given up + pending.
    pub not_delivered: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Refused by the receiver.
    pub rejected: u64,
    /// Given up after the retries.
    pub given_up: u64,
    /// Still queued or in flight at the flush deadline.
    pub pending: u64,
    /// Failed export attempts.
    pub failed_attempts: u64,
    /// The cause of the last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Human-readable detail.
    pub detail: String,
    /// The detail's parts, for the text summary.
    #[serde(skip)]
    pub parts: Vec<String>,
}

impl From<&Delivery> for ExportRow {
    fn from(d: &Delivery) -> Self {
        let u = |n: u64| format!("{n} {}", d.unit.name(n));
        let mut detail = Vec::new();
        match d.unit {
            Unit::Samples => detail.push(format!(
                "{}, {} bytes, {}",
                count(d.requests, "batch", "batches"),
                d.bytes.unwrap_or(0),
                count(d.failed_attempts, "failed attempt", "failed attempts")
            )),
            Unit::DataPoints | Unit::Spans => detail.push(format!(
                "{}, {}",
                count(d.requests, "export", "exports"),
                count(d.failed_attempts, "failed attempt", "failed attempts")
            )),
        }
        if d.dropped > 0 {
            detail.push(format!("{} dropped (queue full)", u(d.dropped)));
        }
        if d.rejected > 0 {
            detail.push(format!("{} rejected by the receiver", u(d.rejected)));
        }
        if d.given_up > 0 {
            detail.push(format!("{} given up after retries", u(d.given_up)));
        }
        if d.pending > 0 {
            detail.push(format!(
                "{} still queued at the flush deadline",
                u(d.pending)
            ));
        }
        if d.unit == Unit::DataPoints && d.last_failed {
            detail.push("FINAL EXPORT FAILED".into());
        }
        if let Some(e) = d
            .last_error
            .as_ref()
            .filter(|_| d.last_failed || d.not_delivered() > 0)
        {
            detail.push(format!("last error: {e}"));
        }
        if let Some(h) = &d.hint {
            detail.push(format!("hint: {h}"));
        }
        ExportRow {
            exporter: d.exporter.clone(),
            unit: d.unit,
            delivered: d.delivered,
            not_delivered: d.not_delivered(),
            dropped: d.dropped,
            rejected: d.rejected,
            given_up: d.given_up,
            pending: d.pending,
            failed_attempts: d.failed_attempts,
            last_error: d.last_error.clone(),
            detail: detail.join(", "),
            parts: detail,
        }
    }
}

/// `n` and the noun in the right number.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The line printed when the final flush takes a while: how long it may take and what it
/// waits for.
pub fn flush_waiting_text(limit: Duration, waiting: &[Waiting]) -> String {
    let mut o = format!("flushing metrics (up to {} s)…", limit.as_secs());
    for w in waiting {
        let _ = write!(
            o,
            "\n  waiting for {}: {} {} in {}",
            w.exporter,
            w.pending,
            w.unit.name(w.pending),
            match w.unit {
                Unit::Samples => count(w.requests, "batch", "batches"),
                Unit::DataPoints | Unit::Spans => count(w.requests, "export", "exports"),
            }
        );
        if w.failed_attempts > 0 {
            let _ = write!(
                o,
                ", {}",
                count(w.failed_attempts, "failed attempt", "failed attempts")
            );
        }
        if let Some(e) = &w.last_error {
            let _ = write!(o, ", last error: {e}");
        }
    }
    o.push('\n');
    o
}

/// Failures that are not HTTP statuses (connection refused, reset, TLS, DNS, timeouts, …),
/// by the server they happened with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetError {
    /// The `error.type`.
    pub error: String,
    /// The server, `host:port`.
    pub target: String,
    /// How many.
    pub count: u64,
}

/// The outcome of one threshold.
#[derive(Clone, Debug, Serialize)]
pub struct ThresholdRow {
    /// The expression as written.
    pub threshold: String,
    /// The measured value in [`ThresholdRow::unit`]; `null` when there was nothing to measure.
    pub actual: Option<f64>,
    /// Whether it held (a threshold with nothing to measure fails).
    pub ok: bool,
    /// Unit of `actual`: `s` (latency), `ratio` (0–1), `count` or `req/s`.
    pub unit: &'static str,
    /// Why `actual` is `null`, e.g. `no successful requests, 250 failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The window of a windowed threshold (`p99[30s]`), seconds; `actual` is then the worst
    /// window's value (see `crate::slo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    /// A windowed threshold: end of the first window that crossed, seconds since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at_s: Option<f64>,
    /// Whether crossing it stops the run (`abort_on_fail`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
    /// The limit it is compared with, in [`ThresholdRow::unit`].
    pub limit: f64,
    /// How far `actual` is from crossing the limit, in [`ThresholdRow::unit`]: positive is the
    /// room left, negative how far it crossed; `null` without an actual.
    pub margin: Option<f64>,
}

impl ThresholdRow {
    /// The row of threshold `t`, judged `o` (its actual, verdict and, for a windowed threshold
    /// judged window by window, the first crossing); `missing()` says why nothing was measured.
    pub(crate) fn of(
        t: &crate::threshold::Threshold,
        o: crate::threshold::Outcome,
        failed_at_s: Option<f64>,
        missing: impl FnOnce() -> String,
    ) -> ThresholdRow {
        ThresholdRow {
            limit: t.value,
            margin: margin_of(t.op, t.value, o.actual),
            reason: o.actual.is_none().then(missing),
            threshold: o.threshold,
            actual: o.actual,
            ok: o.ok,
            unit: unit_of(t.metric),
            window_s: t.window.map(|w| w.as_secs_f64()),
            failed_at_s,
            abort_on_fail: t.abort_on_fail,
        }
    }
}

/// What every summary computes from its rows the same way (one generator's, or a merge's);
/// [`Summary::of_rows`] derives the totals and leaves the rest empty.
pub(crate) struct Rows {
    pub run_id: String,
    /// The run's length, seconds.
    pub secs: f64,
    /// Latency of the successful requests, and of all.
    pub ok: Histogram<u64>,
    pub all: Histogram<u64>,
    pub by_name: Vec<NameRow>,
    pub errors: BTreeMap<String, u64>,
    pub errors_by_target: Vec<TargetError>,
    pub reconnects: u64,
    pub scenarios: Vec<ScenarioRow>,
    pub checks: Vec<CheckRow>,
    pub thresholds: Vec<ThresholdRow>,
    pub interrupted: bool,
}

impl Summary {
    /// Whether an exporter delivered less than everything it took on (dropped, rejected,
    /// given up, or still pending at the flush deadline).
    pub fn export_incomplete(&self) -> bool {
        self.export.iter().any(|e| e.not_delivered > 0)
    }

    /// A summary from its rows: request, failure and iteration totals, rates and latencies
    /// derived from them; no timeline, export rows, segment or capacity data (the caller adds
    /// what it has).
    pub(crate) fn of_rows(r: Rows) -> Summary {
        let requests: u64 = r.by_name.iter().map(|n| n.requests).sum();
        let failures: u64 = r.by_name.iter().map(|n| n.failures).sum();
        let scenarios = r.scenarios;
        Summary {
            run_id: r.run_id,
            requests,
            failures,
            error_rate: if requests == 0 {
                0.0
            } else {
                failures as f64 / requests as f64
            },
            rps: requests as f64 / r.secs,
            duration_s: r.secs,
            latency_s: latency_of(&r.ok),
            latency_all_s: latency_of(&r.all),
            bytes: r.by_name.iter().fold(ByteCounts::default(), |mut a, n| {
                a += n.bytes;
                a
            }),
            by_name: r.by_name,
            errors: r.errors,
            errors_by_target: r.errors_by_target,
            reconnects: r.reconnects,
            iterations: scenarios.iter().map(|s| s.iterations).sum(),
            dropped_iterations: scenarios.iter().map(|s| s.dropped_iterations).sum(),
            dropped_no_vu: scenarios.iter().map(|s| s.dropped_no_vu).sum(),
            dropped_generator: scenarios.iter().map(|s| s.dropped_generator).sum(),
            scenarios,
            checks: r.checks,
            thresholds: r.thresholds,
            export: Vec::new(),
            metrics_folded: None,
            interrupted: r.interrupted,
            generator: None,
            timeline: None,
            segment: None,
            distributed: None,
            aborted: None,
            capacity: None,
            generators: 1,
            fail_on_export_error: false,
            meta: None,
        }
    }
}

/// How far `actual` is from crossing `limit` under `op` (positive: room left).
pub(crate) fn margin_of(op: crate::threshold::Op, limit: f64, actual: Option<f64>) -> Option<f64> {
    use crate::threshold::Op::*;
    let a = actual?;
    Some(match op {
        Lt | Le => limit - a,
        Gt | Ge => a - limit,
        Eq => -(a - limit).abs(),
        Ne => (a - limit).abs(),
    })
}

/// Facts about a run beside its figures (`meta` in the summary JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunMeta {
    /// stampede's version.
    pub version: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// When the workers were done, RFC 3339 UTC.
    pub ended_at: String,
    /// The command line, secrets redacted (empty when run as a library).
    pub command_line: Vec<String>,
    /// The resolved configuration (file < environment < flags), secrets redacted.
    pub config: serde_json::Value,
}

impl RunMeta {
    /// Times of a run that started at `start` and lasted `elapsed`.
    pub(crate) fn timed(start: std::time::SystemTime, elapsed: Duration) -> RunMeta {
        RunMeta {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: humantime::format_rfc3339_millis(start).to_string(),
            ended_at: humantime::format_rfc3339_millis(start + elapsed).to_string(),
            command_line: Vec::new(),
            config: serde_json::Value::Null,
        }
    }
}

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Whether a header, variable or JSON key names a secret.
pub(crate) fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "auth",
        "password",
        "passwd",
        "secret",
        "token",
        "cookie",
        "api-key",
        "api_key",
        "apikey",
        "session",
        "credential",
        "signature",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// A URL without its userinfo (`http://u:p@h/x` → `http://h/x`); other text unchanged.
pub(crate) fn strip_userinfo(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(auth_end);
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{tail}"),
                None => s.to_string(),
            }
        }
        _ => s.to_string(),
    }
}

/// A request body with the values of secret-named fields redacted: JSON objects at any depth,
/// or `k=v&…` form fields.
pub(crate) fn redact_body(body: &str) -> String {
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body) {
        redact_value(&mut v);
        return v.to_string();
    }
    if body.contains('=') && !body.contains(char::is_whitespace) {
        return body
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}={REDACTED}"),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    body.to_string()
}

/// Redacts a JSON value in place: values of secret-named keys, URL userinfo, and request
/// bodies (`body`) whose fields name secrets.
pub(crate) fn redact_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(_) | Value::Number(_) if is_secret_key(k) => {
                        *x = Value::String(REDACTED.into());
                    }
                    Value::String(s) if k == "body" => *s = redact_body(s),
                    _ => redact_value(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_value),
        Value::String(s) => *s = strip_userinfo(s),
        _ => {}
    }
}

/// The resolved configuration as JSON, secrets redacted: secret-named headers, variables and
/// body fields, URL credentials; remote-write targets by their redacted URL only (their
/// credentials never enter the summary).
pub(crate) fn redacted_config(cfg: &crate::config::Config) -> serde_json::Value {
    let mut v = serde_json::to_value(cfg).unwrap_or(serde_json::Value::Null);
    redact_value(&mut v);
    if let Some(o) = v["metrics"].as_object_mut() {
        if let Some(otlp) = o
            .get_mut("otlp")
            .and_then(|x| x.get_mut("headers"))
            .and_then(|h| h.as_object_mut())
        {
            // OTLP headers carry API keys under any name.
            otlp.values_mut().for_each(|x| *x = REDACTED.into());
        }
        if let Some(e) = o
            .get_mut("otlp")
            .and_then(|x| x.get_mut("endpoint"))
            .filter(|e| e.is_string())
        {
            *e = crate::config::redact_url(e.as_str().unwrap_or_default()).into();
        }
        let rw: Vec<serde_json::Value> = cfg
            .metrics
            .remote_write
            .iter()
            .map(|r| serde_json::json!({ "url": crate::config::redact_url(&r.url) }))
            .collect();
        o.insert("remote_write".into(), rw.into());
    }
    v
}

/// The command line with secrets redacted: secret-named `-H`/`--header` values, every
/// `--remote-write-header` value, URL credentials, secret fields of `--body`/`--json`.
pub(crate) fn redacted_args(args: &[String]) -> Vec<String> {
    let header = |h: &str, all: bool| match h.split_once(':') {
        Some((k, _)) if all || is_secret_key(k) => format!("{k}: {REDACTED}"),
        _ => h.to_string(),
    };
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut prev = "";
    for a in args {
        let (flag, val) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (prev, None),
        };
        let value = val.unwrap_or(a);
        let red = match flag {
            "-H" | "--header" => header(value, false),
            "--remote-write-header" => header(value, true),
            "--remote-write-url" | "--otlp-endpoint" => crate::config::redact_url(value),
            "--body" | "--json" => redact_body(value),
            _ => strip_userinfo(value),
        };
        out.push(match val {
            Some(_) => format!("{flag}={red}"),
            None => red,
        });
        prev = if val.is_none() { a.as_str() } else { "" };
    }
    out
}

/// The summary of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// Requests sent, whatever their outcome.
    pub requests: u64,
    /// Requests with an error type.
    pub failures: u64,
    /// failures / requests.
    pub error_rate: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Run duration in seconds.
    pub duration_s: f64,
    /// Latency of the successful requests, seconds (zeros if none succeeded).
    pub latency_s: Latency,
    /// Latency of every request, failures included, seconds.
    pub latency_all_s: Latency,
    /// Octets on the wire and body bytes, both ways, over every request.
    pub bytes: ByteCounts,
    /// Per request name (and method).
    pub by_name: Vec<NameRow>,
    /// Count by error type.
    pub errors: BTreeMap<String, u64>,
    /// Errors that are not HTTP statuses, by `host:port`.
    pub errors_by_target: Vec<TargetError>,
    /// Tries sent again on another connection (not failures; each request counted once in
    /// `requests`): the server had closed the kept-alive connection before answering, or
    /// (HTTP/2) did not process the try. Over HTTP/2, `requests` + `reconnects` are the
    /// requests the server received.
    pub reconnects: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Dropped iterations: `dropped_no_vu + dropped_generator`.
    pub dropped_iterations: u64,
    /// Dropped because no VU was free.
    pub dropped_no_vu: u64,
    /// Dropped because stampede fell behind its schedule.
    pub dropped_generator: u64,
    /// Per scenario.
    pub scenarios: Vec<ScenarioRow>,
    /// Checks.
    pub checks: Vec<CheckRow>,
    /// Threshold outcomes.
    pub thresholds: Vec<ThresholdRow>,
    /// Export delivery.
    pub export: Vec<ExportRow>,
    /// Metric series folded into `otel_metric_overflow` series (absent when none were).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_folded: Option<Folded>,
    /// Whether the run was interrupted (Ctrl-C / SIGTERM).
    pub interrupted: bool,
    /// The generator process's own CPU and memory over the run (filled in by the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<crate::process::Generator>,
    /// Per-interval statistics (see `crate::report::timeline`); filled in by the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<crate::report::timeline::TimelineOut>,
    /// A distributed run's segment: which part of the test this summary covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentInfo>,
    /// A merged summary (coordinator, `stampede merge`): which segments it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distributed: Option<DistributedInfo>,
    /// The `abort_on_fail` threshold that stopped the run early, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<crate::slo::Abort>,
    /// The outcome of a capacity search (`stampede find-max`), with every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::slo::Capacity>,
    /// Load generators whose statistics this summary holds (segments of a distributed run).
    pub generators: u32,
    /// `--fail-on-export-error`: an exporter that delivered less than everything fails the
    /// run (exit 5; see [`Summary::export_incomplete`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fail_on_export_error: bool,
    /// Version, times, command line and resolved configuration; filled in by the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<RunMeta>,
}

/// One segment of a distributed run (in that segment's local summary).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentInfo {
    /// Segment index.
    pub index: u32,
    /// Segments in the run.
    pub count: u32,
    /// The segment as `from:to`, e.g. `1/3:2/3`.
    pub segment: String,
    /// The common start time handed out by the coordinator, seconds since the Unix epoch.
    pub planned_start_unix_s: f64,
    /// When this segment really started, seconds since the Unix epoch.
    pub started_unix_s: f64,
}

/// What a merged summary holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DistributedInfo {
    /// Segments in the run.
    pub segments: u32,
    /// Indexes whose summaries were merged.
    pub merged: Vec<u32>,
    /// Indexes whose summaries are missing (the segment died or never reported): the merged
    /// result is incomplete.
    pub missing: Vec<u32>,
    /// Latest minus earliest real start over the merged segments, seconds.
    pub start_skew_s: f64,
    /// Segments whose generator was CPU-bound (`generator.cpu_bound` in their summaries):
    /// their share of the results may measure the generator, not the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_bound: Vec<u32>,
}

/// Statistics with the plan they belong to: answers thresholds and builds the summary.
pub struct Aggregate<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Merged statistics.
    pub stats: WorkerStats,
    /// Wall-clock duration.
    pub elapsed: Duration,
}

impl Aggregate<'_> {
    fn matching(&self, f: &Filter) -> Vec<usize> {
        (0..self.plan.requests.len())
            .filter(|&i| {
                let m = &self.plan.requests[i];
                f.name.as_deref().is_none_or(|n| n == &*m.name)
                    && f.method.as_deref().is_none_or(|x| x == m.method.as_str())
                    && f.scenario
                        .as_deref()
                        .is_none_or(|s| s == &*self.plan.scenarios[m.scenario].name)
            })
            .collect()
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Why a threshold's metric has no value.
    fn missing(&self, metric: Metric, filter: &Filter) -> String {
        let ids = self.matching(filter);
        let reqs: u64 = ids.iter().map(|i| self.stats.requests[*i].requests).sum();
        let filtered = *filter != Filter::default();
        match metric {
            Metric::Iterations | Metric::DroppedIterations => "no scenario matches".into(),
            Metric::CheckRate | Metric::CheckFailures => {
                if filtered {
                    "no check on the matching requests".into()
                } else {
                    "no checks".into()
                }
            }
            _ if ids.is_empty() => "no request matches".into(),
            _ if reqs == 0 => "no requests were sent".into(),
            _ => format!("no successful requests, {reqs} failed"),
        }
    }

    /// Builds the summary (thresholds evaluated).
    pub fn summary(&self, export: &[Delivery], interrupted: bool) -> Summary {
        let plan = self.plan;
        let s = &self.stats;
        let secs = self.secs();
        let all = merged_latency(s.requests.iter().map(|r| &r.latency));
        let ok = ok_latency(s.requests.iter());
        // Group rows by (scenario, name, method): several definitions may share a name.
        let mut groups: BTreeMap<(usize, String, String), Vec<usize>> = BTreeMap::new();
        for (i, m) in plan.requests.iter().enumerate() {
            groups
                .entry((m.scenario, m.name.to_string(), m.method.to_string()))
                .or_default()
                .push(i);
        }
        let mut by_name = Vec::new();
        for ((sc, name, method), ids) in groups {
            let reqs: u64 = ids.iter().map(|i| s.requests[*i].requests).sum();
            let fails: u64 = ids.iter().map(|i| s.requests[*i].failures).sum();
            let h = merged_latency(ids.iter().map(|i| &s.requests[*i].latency));
            let h_ok = ok_latency(ids.iter().map(|i| &s.requests[*i]));
            let mut codes = BTreeMap::new();
            let mut bytes = ByteCounts::default();
            for i in &ids {
                for (c, n) in &s.requests[*i].statuses {
                    *codes.entry(c.to_string()).or_insert(0) += n;
                }
                bytes += ByteCounts::of(&s.requests[*i]);
            }
            by_name.push(NameRow {
                name,
                method,
                scenario: plan.scenarios[sc].name.to_string(),
                requests: reqs,
                failures: fails,
                rps: reqs as f64 / secs,
                latency_s: latency_of(&h_ok),
                latency_all_s: latency_of(&h),
                status_codes: codes,
                latency_hdr: crate::stats::hdr::encode(&h_ok),
                latency_all_hdr: crate::stats::hdr::encode(&h),
                bytes,
            });
        }
        let mut errors = BTreeMap::new();
        let mut by_target: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (r, m) in s.requests.iter().zip(&plan.requests) {
            for (k, n) in &r.errors {
                *errors.entry(k.as_str().into_owned()).or_insert(0) += n;
                if !matches!(k, ErrorKind::Status(_))
                    && let Some(t) = plan.targets.get(m.target)
                {
                    *by_target
                        .entry((k.as_str().into_owned(), host_port(&t.host, t.port)))
                        .or_insert(0) += n;
                }
            }
        }
        let errors_by_target = by_target
            .into_iter()
            .map(|((error, target), count)| TargetError {
                error,
                target,
                count,
            })
            .collect();
        let scenarios = plan
            .scenarios
            .iter()
            .zip(&s.scenarios)
            .map(|(p, st)| ScenarioRow {
                name: p.name.to_string(),
                executor: executor_name(&p.schedule),
                iterations: st.iterations,
                dropped_iterations: st.dropped.total(),
                dropped_no_vu: st.dropped.no_vu,
                dropped_generator: st.dropped.generator,
                iteration_duration_s: latency_of(&st.duration),
                start_lag_s: p.schedule.is_open().then(|| latency_of(&st.lag)),
                iteration_duration_hdr: crate::stats::hdr::encode(&st.duration),
                start_lag_hdr: p
                    .schedule
                    .is_open()
                    .then(|| crate::stats::hdr::encode(&st.lag)),
                window: p
                    .schedule
                    .duration()
                    .filter(|_| p.schedule.is_open())
                    .map(|d| WindowRow {
                        window_s: d.as_secs_f64(),
                        started: st.window.started,
                        completed: st.window.completed,
                        first_completed_s: st.window.first_done_us.map(|us| us as f64 / 1e6),
                    }),
            })
            .collect::<Vec<_>>();
        let checks = plan
            .checks
            .iter()
            .zip(&s.checks)
            .map(|(c, (p, f))| CheckRow {
                name: c.name.to_string(),
                request: plan.requests[c.request].name.to_string(),
                scenario: plan.scenarios[c.scenario].name.to_string(),
                passes: *p,
                fails: *f,
            })
            .collect();
        let thresholds = plan
            .thresholds
            .iter()
            .map(|t| {
                ThresholdRow::of(t, t.evaluate(self), None, || {
                    self.missing(t.metric, &t.filter)
                })
            })
            .collect();
        Summary {
            export: export.iter().map(ExportRow::from).collect(),
            ..Summary::of_rows(Rows {
                run_id: plan.run_id.clone(),
                secs,
                ok,
                all,
                by_name,
                errors,
                errors_by_target,
                reconnects: s.requests.iter().map(|r| r.reconnects).sum(),
                scenarios,
                checks,
                thresholds,
                interrupted,
            })
        }
    }
}

/// The warning for a CPU-bound generator, in words that wrap.
fn cpu_bound_parts(g: &crate::process::Generator) -> Vec<String> {
    let cores = count(g.cores as u64, "core", "cores");
    vec![
        "WARNING: the generator was CPU-bound".into(),
        format!(
            "(CPU peak {:.0}% of {cores} in a {}s interval, mean {:.0}%;",
            g.cpu_utilization_peak * 100.0,
            g.sample_interval_s,
            g.cpu_utilization_mean * 100.0
        ),
        format!("load threads busy up to {:.0}%):", g.busy_peak * 100.0),
        "results may measure the generator, not the target;".into(),
        "give it more cores or split the load over more generators (--segment-count)".into(),
    ]
}

/// The latency histogram of the successful requests: all minus the failed ones.
fn ok_latency<'a>(rs: impl Iterator<Item = &'a RequestStats> + Clone) -> Histogram<u64> {
    let mut h = merged_latency(rs.clone().map(|r| &r.latency));
    let failed = merged_latency(rs.filter_map(|r| r.failed_latency.as_ref()));
    // Same bounds, and every failed value was also recorded in `latency`: cannot fail.
    let _ = h.subtract(&failed);
    h
}

/// The unit of a metric's raw value (the JSON's `actual`).
pub(crate) fn unit_of(m: Metric) -> &'static str {
    match m {
        Metric::Percentile(_) | Metric::Min | Metric::Max | Metric::Mean => "s",
        Metric::ErrorRate | Metric::CheckRate => "ratio",
        Metric::Rps => "req/s",
        Metric::Requests
        | Metric::Failures
        | Metric::Iterations
        | Metric::DroppedIterations
        | Metric::CheckFailures => "count",
    }
}

pub(crate) fn executor_name(s: &crate::scenario::plan::Schedule) -> String {
    use crate::scenario::plan::Schedule::*;
    match s {
        ConstantVus { .. } => "constant-vus",
        RampingVus { .. } => "ramping-vus",
        SharedIterations { .. } => "shared-iterations",
        ArrivalRate { stages, start, .. } => {
            if stages.len() == 1 && stages[0].target == *start {
                "constant-arrival-rate"
            } else {
                "ramping-arrival-rate"
            }
        }
    }
    .to_string()
}

impl Source for Aggregate<'_> {
    fn value(&self, metric: Metric, filter: &Filter) -> Option<f64> {
        let ids = self.matching(filter);
        let s = &self.stats;
        let scen: Vec<usize> = self
            .plan
            .scenarios
            .iter()
            .filter(|sc| filter.scenario.as_deref().is_none_or(|n| n == &*sc.name))
            .map(|sc| sc.index)
            .collect();
        let reqs: u64 = ids.iter().map(|i| s.requests[*i].requests).sum();
        let fails: u64 = ids.iter().map(|i| s.requests[*i].failures).sum();
        let checks: Vec<(u64, u64)> = self
            .plan
            .checks
            .iter()
            .zip(&s.checks)
            .filter(|(c, _)| ids.contains(&c.request))
            .map(|(_, v)| *v)
            .collect();
        // Latency thresholds judge successful requests; failures are judged by error_rate.
        let lat = || {
            let h = ok_latency(ids.iter().map(|i| &s.requests[*i]));
            (!h.is_empty()).then_some(h)
        };
        match metric {
            Metric::Percentile(q) => lat().map(|h| h.value_at_quantile(q / 100.0) as f64 / 1e6),
            Metric::Min => lat().map(|h| h.min() as f64 / 1e6),
            Metric::Max => lat().map(|h| h.max() as f64 / 1e6),
            Metric::Mean => lat().map(|h| h.mean() / 1e6),
            Metric::ErrorRate => (reqs > 0).then(|| fails as f64 / reqs as f64),
            Metric::Rps => (!ids.is_empty()).then(|| reqs as f64 / self.secs()),
            Metric::Requests => (!ids.is_empty()).then_some(reqs as f64),
            Metric::Failures => (!ids.is_empty()).then_some(fails as f64),
            Metric::Iterations => (!scen.is_empty())
                .then(|| scen.iter().map(|i| s.scenarios[*i].iterations).sum::<u64>() as f64),
            Metric::DroppedIterations => (!scen.is_empty()).then(|| {
                scen.iter()
                    .map(|i| s.scenarios[*i].dropped.total())
                    .sum::<u64>() as f64
            }),
            Metric::CheckRate => {
                let (p, f) = checks.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
                (p + f > 0).then(|| p as f64 / (p + f) as f64)
            }
            Metric::CheckFailures => {
                (!checks.is_empty()).then(|| checks.iter().map(|c| c.1).sum::<u64>() as f64)
            }
        }
    }
}

fn ms(s: f64) -> String {
    let ms = s * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// How the text summary is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextStyle {
    /// Columns to fit in.
    pub width: usize,
    /// ANSI colours (✓ green, ✗ and crossed thresholds red).
    pub colour: bool,
}

/// Width of the text summary when no terminal says otherwise (see [`TextStyle::for_stdout`]).
pub const DEFAULT_TEXT_WIDTH: usize = crate::term::PIPED_MIN_WIDTH;

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            width: DEFAULT_TEXT_WIDTH,
            colour: false,
        }
    }
}

impl TextStyle {
    /// For stdout: the width of the terminal it goes to, or that of the terminal on stderr
    /// (`stampede run | tee run.log`), else `COLUMNS` but at least 120 (a CI log or a file:
    /// nothing wraps there); colour on a terminal unless `NO_COLOR` is set.
    pub fn for_stdout() -> TextStyle {
        use crate::term::{Stream, colour, text_width};
        TextStyle {
            width: text_width(Stream::Stdout),
            colour: colour(Stream::Stdout),
        }
    }
}

/// The table's columns, and the order in which they go when the table must narrow (0: never).
/// p50, p95 and p99 always stay: thresholds are written on them.
const COLUMNS: [(&str, u8); 12] = [
    ("name", 0),
    ("method", 1),
    ("reqs", 0),
    ("fails", 0),
    ("req/s", 4),
    ("min", 2),
    ("mean", 3),
    ("p50", 0),
    ("p90", 6),
    ("p95", 0),
    ("p99", 0),
    ("max", 5),
];
/// The name column is never narrower than this (`total` fits): a longer name goes on a line
/// of its own, above its figures, before any column is dropped.
const NAME_MIN: usize = 5;

/// The per-name table's cells: the heading, one row per name, the total.
fn table_cells(s: &Summary) -> Vec<Vec<String>> {
    let row = |name: &str, method: &str, reqs: u64, fails: u64, rps: f64, l: &Latency| {
        // No successful request: no latency to show (zeros would read as "fast").
        let lat = |v: f64| if reqs > fails { ms(v) } else { "-".into() };
        vec![
            name.to_string(),
            method.to_string(),
            reqs.to_string(),
            fails.to_string(),
            format!("{rps:.1}"),
            lat(l.min),
            lat(l.mean),
            lat(l.p50),
            lat(l.p90),
            lat(l.p95),
            lat(l.p99),
            lat(l.max),
        ]
    };
    let mut rows: Vec<Vec<String>> = vec![COLUMNS.iter().map(|c| c.0.to_string()).collect()];
    for r in &s.by_name {
        rows.push(row(
            &r.name,
            &r.method,
            r.requests,
            r.failures,
            r.rps,
            &r.latency_s,
        ));
    }
    rows.push(row(
        "total",
        "",
        s.requests,
        s.failures,
        s.rps,
        &s.latency_s,
    ));
    rows
}

/// The per-name table fitted to `width`: the lines, and the names of the dropped columns.
///
/// The name column gets what the figures leave: a name longer than that is printed whole on a
/// line of its own with its figures below. Only when the figures alone do not fit are columns
/// dropped (method, min, mean, req/s, max, p90, in that order; never p50, p95, p99).
fn table(s: &Summary, width: usize) -> (Vec<String>, Vec<&'static str>) {
    let rows = table_cells(s);
    let mut widths: Vec<usize> = (0..COLUMNS.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut keep = [true; COLUMNS.len()];
    // Indent, the kept figure columns and the gaps between all kept columns, name excluded.
    let figures = |widths: &[usize], keep: &[bool]| -> usize {
        2 + (1..widths.len())
            .filter(|c| keep[*c])
            .map(|c| widths[c] + 2)
            .sum::<usize>()
    };
    let mut dropped = Vec::new();
    for rank in 1..=6 {
        if figures(&widths, &keep) + NAME_MIN <= width {
            break;
        }
        if let Some(c) = COLUMNS.iter().position(|c| c.1 == rank) {
            keep[c] = false;
            dropped.push(COLUMNS[c].0);
        }
    }
    // The widest name that fits beside the figures sets the column; longer ones go above.
    let room = width.saturating_sub(figures(&widths, &keep)).max(NAME_MIN);
    widths[0] = rows
        .iter()
        .map(|r| r[0].chars().count())
        .filter(|n| *n <= room)
        .max()
        .unwrap_or(NAME_MIN)
        .max(NAME_MIN);
    let line_len = widths[0] + figures(&widths, &keep) - 2;
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if !keep[c] {
                continue;
            }
            let w = widths[c];
            if c == 0 && cell.chars().count() > w {
                // Whole on its own line (cut only past the whole width); figures below.
                out.push(format!("  {}", abbreviate(cell, width.saturating_sub(2))));
                let _ = write!(line, "{:w$}  ", "");
            } else if c < 2 {
                let _ = write!(line, "{cell:<w$}  ");
            } else {
                let _ = write!(line, "{cell:>w$}  ");
            }
        }
        out.push(format!("  {}", line.trim_end()));
        if i == 0 || i == rows.len() - 2 {
            out.push(format!("  {}", "-".repeat(line_len)));
        }
    }
    (out, dropped)
}

/// A threshold's measured value in the threshold's own unit: `0.211ms` for `p95 < 500ms`,
/// `1.98%` for a rate, `0` for a count, `12.5 req/s`.
pub fn format_actual(threshold: &str, unit: &str, v: f64) -> String {
    match unit {
        "s" => format_latency_in(v, latency_unit(threshold)),
        "ratio" => format_percent(v * 100.0),
        "req/s" => format!("{v:.1} req/s"),
        _ => format!("{v:.0}"),
    }
}

/// Latency units, smallest first: (suffix, seconds).
const LATENCY_UNITS: [(&str, f64); 4] = [("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)];

/// The unit a latency threshold was written in (its value's suffix; a bare number is ms).
fn latency_unit(threshold: &str) -> usize {
    let t = threshold.trim_end();
    let suffix: String = {
        let rev: String = t.chars().rev().take_while(|c| c.is_alphabetic()).collect();
        rev.chars().rev().collect()
    };
    match suffix.as_str() {
        "us" | "µs" => 0,
        "s" => 2,
        "m" => 3,
        _ => 1,
    }
}

/// `v` seconds in unit `u`, moving to a neighbouring unit when the number would read badly
/// (below 0.1 or from 10,000 up).
fn format_latency_in(v: f64, mut u: usize) -> String {
    let value = |u: usize| v / LATENCY_UNITS[u].1;
    while u > 0 && value(u) < 0.1 && v > 0.0 {
        u -= 1;
    }
    while u < LATENCY_UNITS.len() - 1 && value(u) >= 10_000.0 {
        u += 1;
    }
    format!("{}{}", significant(value(u)), LATENCY_UNITS[u].0)
}

/// Three significant digits, without trailing noise for integers ≥ 100.
fn significant(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A percentage with two decimals, or two significant digits below 1 %.
fn format_percent(p: f64) -> String {
    if p == 0.0 {
        "0%".into()
    } else if p.abs() >= 1.0 {
        format!("{p:.2}%")
    } else {
        let decimals = (1.0 - p.abs().log10().floor()).clamp(2.0, 6.0) as usize;
        format!("{p:.decimals$}%")
    }
}

/// The errors line: count by type; types that are not HTTP statuses name their host:port.
fn error_items(s: &Summary) -> Vec<String> {
    s.errors
        .iter()
        .map(|(k, v)| {
            let targets: Vec<&TargetError> = s
                .errors_by_target
                .iter()
                .filter(|t| &t.error == k)
                .collect();
            match targets.as_slice() {
                [] => format!("{k}: {v}"),
                [one] => format!("{k}: {v} ({})", one.target),
                many => {
                    let list: Vec<String> = many
                        .iter()
                        .map(|t| format!("{} ×{}", t.target, t.count))
                        .collect();
                    format!("{k}: {v} ({})", list.join(", "))
                }
            }
        })
        .collect()
}

/// `first`, then `parts` joined by `sep`, starting a new line (indented by `indent`) before a
/// part that would pass `width`.
fn wrap_parts(parts: &[String], first: &str, sep: &str, indent: &str, width: usize) -> String {
    let mut out = String::from(first);
    let mut line_len = first.chars().count();
    let sep_len = sep.chars().count();
    // Room for the separator's mark (`,`) left at the end of a line that breaks after a part.
    let mark = sep.trim_end().chars().count();
    for (i, p) in parts.iter().enumerate() {
        let n = p.chars().count();
        let reserve = if i + 1 < parts.len() { mark } else { 0 };
        if i > 0 && line_len + sep_len + n + reserve > width {
            out.push_str(sep.trim_end());
            out.push('\n');
            out.push_str(indent);
            line_len = indent.chars().count();
        } else if i > 0 {
            out.push_str(sep);
            line_len += sep_len;
        }
        out.push_str(p);
        line_len += n;
    }
    out
}

/// What the requests sent and received: on the wire, and their bodies alone.
fn data_line(b: &ByteCounts, width: usize) -> String {
    let data = [
        format!(
            "data on the wire: {} sent, {} received",
            bytes_text(b.wire_sent),
            bytes_text(b.wire_received)
        ),
        format!(
            "bodies alone: {} sent, {} received",
            bytes_text(b.body_sent),
            bytes_text(b.body_received)
        ),
    ];
    wrap_parts(&data, "  ", "; ", "    ", width)
}

/// Renders the summary as a text report.
pub fn render_text(s: &Summary, style: &TextStyle) -> String {
    let paint = Paint { on: style.colour };
    let mut o = String::new();
    let _ = writeln!(o);
    let mut head = vec![
        format!("run {}", s.run_id),
        format!("{:.1}s", s.duration_s),
        format!("{} requests", s.requests),
        format!("{} failures ({:.2}%)", s.failures, s.error_rate * 100.0),
        format!("{:.1} req/s", s.rps),
    ];
    if s.interrupted {
        head.push("(interrupted)".into());
    }
    let _ = writeln!(o, "{}", wrap_parts(&head, "", "  ", "  ", style.width));
    let _ = writeln!(o);
    let (lines, dropped) = table(s, style.width);
    for l in lines {
        let _ = writeln!(o, "{l}");
    }
    if s.failures > 0 {
        let _ = writeln!(
            o,
            "  latency of successful requests only ({} failures excluded)",
            s.failures
        );
    }
    if !dropped.is_empty() {
        let mut parts: Vec<String> = dropped.iter().map(|d| d.to_string()).collect();
        if let Some(last) = parts.last_mut() {
            last.push_str(" (all in --summary-json)");
        }
        let first = format!("  hidden to fit {} columns: ", style.width);
        let _ = writeln!(
            o,
            "{}",
            wrap_parts(&parts, &first, ", ", "    ", style.width)
        );
    }
    let _ = writeln!(o, "{}", data_line(&s.bytes, style.width));
    let _ = writeln!(o);
    for sc in &s.scenarios {
        let mut parts = vec![format!(
            "scenario {} ({}): {} iterations",
            sc.name, sc.executor, sc.iterations
        )];
        if sc.executor.contains("arrival") {
            parts.push(format!("{} dropped", sc.dropped_iterations));
            if sc.dropped_iterations > 0 {
                parts.push(format!(
                    "{} no free VU, {} generator behind schedule",
                    sc.dropped_no_vu, sc.dropped_generator
                ));
            }
            if let Some(l) = &sc.start_lag_s {
                parts.push(format!("start lag p99 {}", ms(l.p99)));
            }
        }
        let _ = writeln!(o, "{}", wrap_parts(&parts, "  ", ", ", "    ", style.width));
    }
    if !s.errors.is_empty() {
        let items = error_items(s);
        let one_line = format!("  errors: {}", items.join(", "));
        if one_line.chars().count() <= style.width {
            let _ = writeln!(o, "{one_line}");
        } else {
            let _ = writeln!(o, "  errors:");
            for i in items {
                let _ = writeln!(o, "    {i}");
            }
        }
    }
    if s.reconnects > 0 {
        let _ = writeln!(
            o,
            "  reconnects: {} (tries sent again on another connection; not failures)",
            s.reconnects
        );
    }
    if !s.checks.is_empty() {
        let _ = writeln!(o, "  checks:");
        for c in &s.checks {
            let mark = if c.fails == 0 {
                paint.green("✓")
            } else {
                paint.red("✗")
            };
            let _ = writeln!(
                o,
                "    {mark} {} {}: {} passed, {} failed",
                c.request, c.name, c.passes, c.fails
            );
        }
    }
    for e in &s.export {
        let mut parts = vec![format!(
            "export {}: {} {} delivered",
            e.exporter,
            e.delivered,
            e.unit.name(e.delivered)
        )];
        let mut not = format!(
            "{} {} NOT delivered",
            e.not_delivered,
            e.unit.name(e.not_delivered)
        );
        let mut detail = e.parts.iter();
        if let Some(first) = detail.next() {
            not = format!("{not} ({first}");
        }
        parts.push(not);
        parts.extend(detail.cloned());
        if !e.parts.is_empty()
            && let Some(last) = parts.last_mut()
        {
            last.push(')');
        }
        let _ = writeln!(o, "{}", wrap_parts(&parts, "  ", ", ", "    ", style.width));
    }
    if let Some(f) = &s.metrics_folded {
        let parts = [
            format!(
                "warning: {} metric series went over the limit of {} per instrument",
                f.series, f.limit
            ),
            "and were folded into otel_metric_overflow series".to_string(),
            "(run id and scenario kept; per-name totals in the metrics are incomplete,".to_string(),
            "the summary is exact)".to_string(),
        ];
        let _ = writeln!(o, "{}", wrap_parts(&parts, "  ", " ", "    ", style.width));
    }
    if let Some(g) = s.generator.as_ref().filter(|g| g.cpu_bound) {
        let line = wrap_parts(&cpu_bound_parts(g), "  ", " ", "    ", style.width);
        let _ = writeln!(o, "{}", paint.red(&line));
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(o, "  thresholds:");
        for t in &s.thresholds {
            let actual = match (t.actual, &t.reason) {
                (Some(a), _) => format!("actual {}", format_actual(&t.threshold, t.unit, a)),
                (None, Some(r)) => r.clone(),
                (None, None) => "no data".into(),
            };
            let actual = match (t.window_s, t.failed_at_s) {
                (Some(_), Some(at)) => format!(
                    "worst window {}, first crossed at {at:.1}s",
                    actual.trim_start_matches("actual ")
                ),
                (Some(_), None) if t.actual.is_some() => {
                    format!("worst window {}", actual.trim_start_matches("actual "))
                }
                _ => actual,
            };
            let line = if t.ok {
                format!("{} {}  ({actual})", paint.green("✓"), t.threshold)
            } else {
                paint.red(&format!("✗ CROSSED {}  ({actual})", t.threshold))
            };
            let _ = writeln!(o, "    {line}");
        }
    }
    if let Some(a) = &s.aborted {
        let unit = s
            .thresholds
            .iter()
            .find(|t| t.threshold == a.threshold)
            .map_or("count", |t| t.unit);
        let _ = writeln!(
            o,
            "  {}",
            paint.red(&format!(
                "aborted at {:.1}s: threshold {} crossed (abort_on_fail; actual {})",
                a.at_s,
                a.threshold,
                format_actual(&a.threshold, unit, a.actual)
            ))
        );
    }
    if let Some(c) = &s.capacity {
        o.push_str(&crate::slo::capacity_text(c));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_actuals_read_in_the_thresholds_unit() {
        let f = format_actual;
        assert_eq!(f("p95 < 500ms", "s", 0.000_211), "0.211ms");
        assert_eq!(f("p95 < 500", "s", 0.000_211), "0.211ms");
        assert_eq!(f("p95 < 500ms", "s", 0.000_060), "60.0µs");
        assert_eq!(f("p99 < 1us", "s", 0.000_211), "211µs");
        assert_eq!(f("p99 < 1µs", "s", 0.5), "500ms");
        assert_eq!(f("p95 < 1s", "s", 0.8), "0.800s");
        assert_eq!(f("p95 < 1s", "s", 0.000_211), "0.211ms");
        assert_eq!(f("max < 2m", "s", 90.0), "1.50m");
        assert_eq!(f("p95 < 500ms", "s", 0.0), "0ms");
        assert_eq!(f("error_rate < 5%", "ratio", 0.019_776), "1.98%");
        assert_eq!(f("error_rate < 0.05", "ratio", 0.000_12), "0.012%");
        assert_eq!(f("error_rate < 5%", "ratio", 0.0), "0%");
        assert_eq!(f("check_rate > 99%", "ratio", 1.0), "100.00%");
        assert_eq!(f("dropped_iterations == 0", "count", 0.0), "0");
        assert_eq!(f("requests > 10", "count", 1500.0), "1500");
        assert_eq!(f("rps > 100", "req/s", 1234.56), "1234.6 req/s");
    }

    fn lat(v: f64) -> Latency {
        Latency {
            min: v,
            mean: v,
            p50: v,
            p90: v,
            p95: v,
            p99: v,
            max: v,
        }
    }

    fn summary(names: &[&str]) -> Summary {
        Summary {
            run_id: "20261126-021500-ab12".into(),
            requests: 24,
            failures: 4,
            error_rate: 4.0 / 24.0,
            rps: 1234.5,
            duration_s: 10.0,
            latency_s: lat(0.0123),
            latency_all_s: lat(0.0101),
            bytes: ByteCounts::default(),
            by_name: names
                .iter()
                .map(|n| NameRow {
                    name: n.to_string(),
                    method: "GET".into(),
                    scenario: "default".into(),
                    requests: 12,
                    failures: 2,
                    rps: 617.2,
                    latency_s: lat(0.0123),
                    latency_all_s: lat(0.0101),
                    status_codes: BTreeMap::new(),
                    latency_hdr: String::new(),
                    latency_all_hdr: String::new(),
                    bytes: ByteCounts::default(),
                })
                .collect(),
            errors: [("connection_refused".to_string(), 4)].into(),
            errors_by_target: vec![
                TargetError {
                    error: "connection_refused".into(),
                    target: "127.0.0.1:1".into(),
                    count: 3,
                },
                TargetError {
                    error: "connection_refused".into(),
                    target: "[::1]:2".into(),
                    count: 1,
                },
            ],
            reconnects: 0,
            iterations: 24,
            dropped_iterations: 0,
            dropped_no_vu: 0,
            dropped_generator: 0,
            scenarios: vec![],
            checks: vec![],
            thresholds: vec![ThresholdRow {
                threshold: "p95 < 1ms".into(),
                actual: Some(0.0123),
                ok: false,
                unit: "s",
                reason: None,
                window_s: None,
                failed_at_s: None,
                abort_on_fail: false,
                limit: 0.001,
                margin: Some(0.001 - 0.0123),
            }],
            export: vec![],
            metrics_folded: None,
            interrupted: false,
            generator: None,
            timeline: None,
            segment: None,
            distributed: None,
            aborted: None,
            capacity: None,
            generators: 1,
            fail_on_export_error: false,
            meta: None,
        }
    }

    fn generator(peak: f64) -> crate::process::Generator {
        crate::process::Generator {
            cores: 1,
            cpu_s: 2.9,
            cpu_user_s: 2.5,
            cpu_system_s: 0.4,
            cpu_utilization_mean: 0.97,
            cpu_utilization_peak: peak,
            busy_peak: peak,
            busy_poll_idle_s: 0.0,
            sample_interval_s: 1.0,
            memory_bytes: 1 << 24,
            memory_peak_bytes: 1 << 25,
            cpu_bound: peak >= crate::process::CPU_BOUND_AT,
        }
    }

    #[test]
    fn a_cpu_bound_generator_is_warned_about_and_a_light_one_is_not() {
        let style = TextStyle {
            width: 300,
            ..TextStyle::default()
        };
        let mut s = summary(&["/"]);
        s.generator = Some(generator(0.99));
        let text = render_text(&s, &style);
        assert!(
            text.contains("WARNING: the generator was CPU-bound (CPU peak 99% of 1 core in a 1s interval, mean 97%; load threads busy up to 99%): results may measure the generator, not the target;"),
            "{text}"
        );
        s.generator = Some(generator(0.5));
        let text = render_text(&s, &style);
        assert!(!text.contains("CPU-bound"), "{text}");
        let json = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(json["generator"]["cpu_bound"], false, "{json}");
        assert_eq!(json["generator"]["cores"], 1, "{json}");
    }

    #[test]
    fn the_table_fits_the_width_and_says_what_it_hid() {
        let s = summary(&["/newsql/api/getTablesByAppId", "/user/api/getApps"]);
        for width in [60, 80, 100, 140] {
            let text = render_text(
                &s,
                &TextStyle {
                    width,
                    colour: false,
                },
            );
            for l in text.lines() {
                assert!(l.chars().count() <= width, "{width}: {l}\n{text}");
            }
            let table: Vec<&str> = text.lines().skip_while(|l| !l.contains("reqs")).collect();
            // The columns thresholds are usually written on never go.
            for col in ["reqs", "fails", "p95", "p99"] {
                assert!(table[0].contains(col), "{width}: {text}");
            }
            assert!(!text.contains('\x1b'), "no colour asked: {text}");
        }
        let wide = render_text(
            &s,
            &TextStyle {
                width: 140,
                colour: false,
            },
        );
        assert!(wide.contains("/newsql/api/getTablesByAppId"), "{wide}");
        assert!(!wide.contains("hidden"), "{wide}");
        for width in [80, 100, 120] {
            let text = render_text(
                &s,
                &TextStyle {
                    width,
                    colour: false,
                },
            );
            // Whole names (on a line of their own when need be), p50 always.
            assert!(text.contains("  /newsql/api/getTablesByAppId"), "{text}");
            assert!(!text.contains('…'), "{text}");
            let head = text
                .lines()
                .find(|l| l.contains("reqs"))
                .unwrap_or_default();
            assert!(head.contains(" p50 "), "{width}: {text}");
        }
        let narrow = render_text(
            &s,
            &TextStyle {
                width: 80,
                colour: false,
            },
        );
        assert!(narrow.contains("hidden to fit 80 columns"), "{narrow}");
        assert!(
            narrow.contains("connection_refused: 4 (127.0.0.1:1 ×3, [::1]:2 ×1)"),
            "{narrow}"
        );
        assert!(
            narrow.contains("✗ CROSSED p95 < 1ms  (actual 12.3ms)"),
            "{narrow}"
        );
    }

    #[test]
    fn colour_marks_passes_green_and_crossings_red() {
        let mut s = summary(&["/"]);
        s.thresholds.push(ThresholdRow {
            threshold: "error_rate < 50%".into(),
            actual: Some(0.16),
            ok: true,
            unit: "ratio",
            reason: None,
            window_s: None,
            failed_at_s: None,
            abort_on_fail: false,
            limit: 0.5,
            margin: Some(0.34),
        });
        let text = render_text(
            &s,
            &TextStyle {
                width: 100,
                colour: true,
            },
        );
        assert!(
            text.contains("\x1b[31m✗ CROSSED p95 < 1ms  (actual 12.3ms)\x1b[0m"),
            "{text}"
        );
        assert!(
            text.contains("\x1b[32m✓\x1b[0m error_rate < 50%  (actual 16.00%)"),
            "{text}"
        );
    }

    #[test]
    fn margins_are_room_left_or_how_far_it_crossed() {
        use crate::threshold::Op;
        assert_eq!(margin_of(Op::Lt, 0.5, Some(0.2)), Some(0.3));
        assert_eq!(margin_of(Op::Lt, 0.5, Some(0.75)), Some(-0.25));
        assert_eq!(margin_of(Op::Ge, 100.0, Some(150.0)), Some(50.0));
        assert_eq!(margin_of(Op::Eq, 0.0, Some(3.0)), Some(-3.0));
        assert_eq!(margin_of(Op::Lt, 0.5, None), None);
    }

    #[test]
    fn command_lines_lose_their_secrets_and_keep_the_rest() {
        let args: Vec<String> = [
            "stampede",
            "run",
            "-H",
            "Authorization: Bearer abc",
            "-H",
            "Accept: text/plain",
            "--header=X-Api-Key: k1",
            "--remote-write-header",
            "X-Scope-OrgID: tenant",
            "--url",
            "http://u:p@127.0.0.1:8080/x?id=1",
            "--remote-write-url",
            "http://127.0.0.1:9090/api/v1/write?token=t",
            "--json",
            r#"{"user":"a","password":"pw"}"#,
            "--body=user=a&token=t2",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            redacted_args(&args),
            [
                "stampede",
                "run",
                "-H",
                "Authorization: <redacted>",
                "-H",
                "Accept: text/plain",
                "--header=X-Api-Key: <redacted>",
                "--remote-write-header",
                "X-Scope-OrgID: <redacted>",
                "--url",
                "http://127.0.0.1:8080/x?id=1",
                "--remote-write-url",
                "http://127.0.0.1:9090/api/v1/write?<redacted>",
                "--json",
                r#"{"password":"<redacted>","user":"a"}"#,
                "--body=user=a&token=<redacted>",
            ]
        );
    }

    #[test]
    fn rows_without_a_successful_request_show_no_latency() {
        let mut s = summary(&["/"]);
        s.by_name[0].failures = s.by_name[0].requests;
        let text = render_text(&s, &TextStyle::default());
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("/ "))
            .expect("row");
        assert!(row.trim_end().ends_with('-'), "{row}");
    }
}
