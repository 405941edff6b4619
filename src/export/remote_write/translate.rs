//! OpenTelemetry `ResourceMetrics` → Prometheus remote-write time series.
//!
//! Flow: collection → **translate** → encode → queue → send.
//!
//! Pure functions only (no I/O, no clock): everything here is deterministic and
//! unit-tested. The rules follow the OTel→Prometheus compatibility spec as the
//! OpenTelemetry Collector `prometheusremotewrite` exporter applies them by default
//! (metric suffixes on, UTF-8 escaping to underscores, `target_info` on):
//!
//! * metric names: split on every char outside `[a-zA-Z0-9:]` and re-joined with
//!   `_` (so `.`/`-`/runs of `_` become one `_`), unit suffix appended unless the
//!   name already has that token (`s`→`seconds`, `By`→`bytes`, `{x}` units
//!   dropped, `a/b` → `a_per_b`), `_total` for monotonic sums, `_ratio` for gauges
//!   with unit `1`, leading digit → `_` prefix;
//! * labels: invalid chars → `_`, leading digit → `key_`, a single leading `_` →
//!   `key_` prefix, colliding sanitised names joined with `;` in original-key order,
//!   `job`/`instance` from `service.namespace/service.name` and
//!   `service.instance.id` (these win over data-point attributes), sorted by name;
//! * classic histograms: `_bucket{le}` (cumulative, `+Inf` included), `_sum`, `_count`;
//! * exponential histograms: native histograms, scale clamped to 8 by merging buckets;
//! * `target_info{job,instance,<other resource attributes>} 1`;
//! * exemplars (`http.client.request.duration` only, one per data point and collection: the
//!   slowest sampled request): on the `_bucket` series of the first bucket whose `le` holds
//!   the value, as the Collector's exporter places them, with `trace_id` and `span_id` labels;
//!   on the series itself for native histograms.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, MetricData,
    ResourceMetrics,
};

use super::proto::{
    BucketSpan, Exemplar, Histogram, Label, MetricMetadata, Sample, TimeSeries, histogram,
    metric_metadata::MetricType,
};
use crate::metrics::{EXEMPLAR_INSTRUMENT, Exemplars, series_key};

/// One-line switch: add `otel_scope_name` / `otel_scope_version` labels to every
/// series (newer Collector versions do this when scope promotion is enabled).
pub const PROMOTE_SCOPE_LABELS: bool = false;

/// Zero threshold used for native histograms when the data point has none
/// (same default as the Collector's exponential histogram conversion).
pub const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

/// Name of the resource info series.
pub const TARGET_INFO: &str = "target_info";

/// Knobs for [`translate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Add `otel_scope_name`/`otel_scope_version` labels (default [`PROMOTE_SCOPE_LABELS`]).
    pub promote_scope_labels: bool,
    /// Emit the `target_info` series (default true).
    pub target_info: bool,
    /// Emit `MetricMetadata` entries (default false, like the Collector's `send_metadata`).
    pub metadata: bool,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        Self {
            promote_scope_labels: PROMOTE_SCOPE_LABELS,
            target_info: true,
            metadata: false,
        }
    }
}

/// Result of translating one collection.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Translated {
    /// The series, in a deterministic order (scope, metric, data point).
    pub timeseries: Vec<TimeSeries>,
    /// Metadata (only when [`TranslateOptions::metadata`] is set).
    pub metadata: Vec<MetricMetadata>,
    /// Names of metrics skipped because they had Delta temporality.
    pub skipped_delta: Vec<String>,
    /// Human-readable reasons for data points that could not be translated.
    pub errors: Vec<String>,
}

impl Translated {
    /// Number of samples (float samples + native histogram samples).
    pub fn sample_count(&self) -> usize {
        self.timeseries
            .iter()
            .map(|t| t.samples.len() + t.histograms.len())
            .sum()
    }
}

/// The Prometheus-relevant kind of an OTel metric, used for name suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// OTel gauge.
    Gauge,
    /// Monotonic cumulative sum (Prometheus counter, `_total`).
    MonotonicCounter,
    /// Non-monotonic sum (exported as a Prometheus gauge, no `_total`, no `_ratio`).
    NonMonotonicCounter,
    /// Explicit-bucket histogram.
    Histogram,
    /// Exponential histogram (native histogram).
    ExponentialHistogram,
}

/// Errors converting a single data point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// Prometheus native histograms support schemas -4..=8 only.
    #[error("exponential histogram scale {0} is below the minimum Prometheus schema -4")]
    ScaleTooSmall(i32),
}

fn is_valid_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

fn main_unit(u: &str) -> Cow<'_, str> {
    Cow::Borrowed(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => return Cow::Owned(other.to_owned()),
    })
}

fn per_unit(u: &str) -> Cow<'_, str> {
    Cow::Borrowed(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return Cow::Owned(other.to_owned()),
    })
}

/// Invalid chars → `_`, runs of `_` collapsed, leading `_` trimmed.
fn clean_up_unit(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    for c in u.chars() {
        let c = if is_valid_metric_char(c) { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    out
}

fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let mut main_suffix = String::new();
    if !main.is_empty() && !main.contains(['{', '}']) {
        main_suffix = main_unit(main).into_owned();
    }
    let mut per_suffix = String::new();
    if let Some(per) = parts.next() {
        let per = per.trim();
        if !per.is_empty() && !per.contains(['{', '}']) {
            let p = per_unit(per);
            if !p.is_empty() {
                per_suffix = format!("per_{p}");
            }
        }
    }
    (clean_up_unit(&main_suffix), clean_up_unit(&per_suffix))
}

/// Builds the Prometheus metric (family) name for an OTel metric name, unit and
/// kind, exactly like the Collector's default normalisation. Histogram names are
/// the family name; append `_bucket`/`_sum`/`_count` yourself.
pub fn metric_name(name: &str, unit: &str, kind: MetricKind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_valid_metric_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();

    let (mut main, mut per) = unit_suffixes(unit);
    if tokens.contains(&main) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if per.ends_with('_') {
            per.pop();
        }
        if tokens.contains(&per) {
            per.clear();
        }
    }
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == MetricKind::MonotonicCounter {
        tokens.retain(|t| t != "total");
        tokens.push("total".to_owned());
    }
    if unit == "1" && kind == MetricKind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".to_owned());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Sanitises an attribute key into a Prometheus label name: every char outside
/// `[a-zA-Z0-9_]` becomes `_`; a leading digit gets a `key_` prefix; a single
/// leading underscore gets a `key` prefix (`_x` → `key_x`; `__x` is kept).
/// Returns an empty string for an empty key.
pub fn sanitize_label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    s
}

/// Formats a bucket bound like Go's `strconv.FormatFloat(f, 'f', -1, 64)` as used
/// by Prometheus/the Collector for `le`: shortest round-trip decimal, no exponent.
pub fn format_le(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_owned()
    } else if bound == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if bound.is_nan() {
        "NaN".to_owned()
    } else if bound == 0.0 {
        "0".to_owned()
    } else {
        format!("{bound}")
    }
}

/// Milliseconds since the Unix epoch (0 for pre-epoch times).
pub fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Labels shared by all series of one resource (+ scope): `job`, `instance`, scope labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonLabels {
    /// (already valid) label name → value, applied after data point attributes.
    pub labels: Vec<(String, String)>,
}

/// Derives `job`/`instance` from resource attributes as the Collector does.
pub fn resource_labels<'a>(
    attrs: impl IntoIterator<Item = (&'a str, Cow<'a, str>)>,
) -> CommonLabels {
    let mut name = None;
    let mut namespace = None;
    let mut instance = None;
    for (k, v) in attrs {
        match k {
            "service.name" => name = Some(v.into_owned()),
            "service.namespace" => namespace = Some(v.into_owned()),
            "service.instance.id" => instance = Some(v.into_owned()),
            _ => {}
        }
    }
    let mut labels = Vec::new();
    if let Some(name) = name {
        let job = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        labels.push(("job".to_owned(), job));
    }
    if let Some(i) = instance {
        labels.push(("instance".to_owned(), i));
    }
    CommonLabels { labels }
}

/// Builds the sanitised label map of one data point (without `__name__`):
/// attributes sorted by original key, sanitised, collisions joined with `;`,
/// then `common` labels override.
pub fn attribute_labels<'a>(
    attrs: impl IntoIterator<Item = (&'a str, Cow<'a, str>)>,
    common: &CommonLabels,
) -> BTreeMap<String, String> {
    let mut attrs: Vec<(&str, Cow<'_, str>)> = attrs.into_iter().collect();
    attrs.sort_by(|a, b| a.0.cmp(b.0));
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in attrs {
        let key = sanitize_label_name(k);
        if key.is_empty() {
            continue;
        }
        match map.get_mut(&key) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&v);
            }
            None => {
                map.insert(key, v.into_owned());
            }
        }
    }
    for (k, v) in &common.labels {
        map.insert(k.clone(), v.clone());
    }
    map
}

/// Finishes a label set: adds `__name__` and an optional extra label (e.g. `le`),
/// drops empty values (Prometheus treats them as absent) and returns labels sorted
/// by name.
pub fn finish_labels(
    base: &BTreeMap<String, String>,
    name: &str,
    extra: Option<(&str, &str)>,
) -> Vec<Label> {
    let mut labels: Vec<Label> = Vec::with_capacity(base.len() + 2);
    let mut push = |n: &str, v: &str| {
        if !v.is_empty() {
            labels.push(Label {
                name: n.to_owned(),
                value: v.to_owned(),
            });
        }
    };
    push("__name__", name);
    if let Some((n, v)) = extra {
        push(n, v);
    }
    for (k, v) in base {
        if k == "__name__" || extra.is_some_and(|(n, _)| n == k) {
            continue;
        }
        push(k, v);
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels
}

/// Classic histogram buckets: `(le, cumulative count)` including `+Inf` = `count`.
pub fn classic_buckets(bounds: &[f64], counts: &[u64], count: u64) -> Vec<(String, u64)> {
    let mut out = Vec::with_capacity(bounds.len() + 1);
    let mut cumulative: u64 = 0;
    for (i, b) in bounds.iter().enumerate() {
        cumulative = cumulative.saturating_add(counts.get(i).copied().unwrap_or(0));
        out.push((format_le(*b), cumulative));
    }
    out.push(("+Inf".to_owned(), count));
    out
}

/// Converts an OTel dense exponential bucket layout (`offset`, `counts`) into
/// Prometheus spans + delta-encoded counts, merging `2^scale_down` OTel buckets
/// into one. OTel bucket `i` covers `(base^i, base^(i+1)]`, Prometheus bucket `j`
/// covers `(base^(j-1), base^j]`, so `j = (i >> scale_down) + 1`. Empty buckets
/// are skipped; gaps of up to 2 empty buckets are encoded inside a span (like
/// client_golang), larger gaps start a new span.
pub fn convert_buckets_layout(
    offset: i32,
    counts: &[u64],
    scale_down: u32,
) -> (Vec<BucketSpan>, Vec<i64>) {
    let mut merged: Vec<(i64, u64)> = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let otel_idx = i64::from(offset) + i as i64;
        let idx = (otel_idx >> scale_down.min(63)) + 1;
        match merged.last_mut() {
            Some(last) if last.0 == idx => last.1 = last.1.saturating_add(c),
            _ => merged.push((idx, c)),
        }
    }
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas: Vec<i64> = Vec::with_capacity(merged.len());
    let mut prev_count: i64 = 0;
    let mut prev_idx: Option<i64> = None;
    for (idx, c) in merged {
        let c = i64::try_from(c).unwrap_or(i64::MAX);
        match prev_idx {
            None => spans.push(BucketSpan {
                offset: clamp_i32(idx),
                length: 0,
            }),
            Some(p) => {
                let gap = idx - p - 1;
                if gap > 2 {
                    spans.push(BucketSpan {
                        offset: clamp_i32(gap),
                        length: 0,
                    });
                } else if let Some(span) = spans.last_mut() {
                    for _ in 0..gap {
                        span.length += 1;
                        deltas.push(-prev_count);
                        prev_count = 0;
                    }
                }
            }
        }
        if let Some(span) = spans.last_mut() {
            span.length += 1;
        }
        deltas.push(c - prev_count);
        prev_count = c;
        prev_idx = Some(idx);
    }
    (spans, deltas)
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// Input of [`exponential_to_native`], decoupled from SDK types so it can be tested.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpHistogramInput<'a> {
    /// OTel scale.
    pub scale: i32,
    /// Total count.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    /// Count of the zero bucket.
    pub zero_count: u64,
    /// OTel zero threshold (0 → [`DEFAULT_ZERO_THRESHOLD`]).
    pub zero_threshold: f64,
    /// Positive buckets: OTel offset and dense counts.
    pub positive: (i32, &'a [u64]),
    /// Negative buckets: OTel offset and dense counts.
    pub negative: (i32, &'a [u64]),
    /// Timestamp in ms.
    pub timestamp: i64,
}

/// Converts an OTel exponential histogram data point into a Prometheus native
/// histogram (integer counts, reset hint UNKNOWN as the Collector does). Scales
/// above 8 are downscaled to 8 by merging buckets; scales below -4 are rejected.
pub fn exponential_to_native(p: &ExpHistogramInput<'_>) -> Result<Histogram, TranslateError> {
    if p.scale < -4 {
        return Err(TranslateError::ScaleTooSmall(p.scale));
    }
    let (schema, scale_down) = if p.scale > 8 {
        (8, u32::try_from(p.scale - 8).unwrap_or(0))
    } else {
        (p.scale, 0)
    };
    let (positive_spans, positive_deltas) =
        convert_buckets_layout(p.positive.0, p.positive.1, scale_down);
    let (negative_spans, negative_deltas) =
        convert_buckets_layout(p.negative.0, p.negative.1, scale_down);
    Ok(Histogram {
        count: Some(histogram::Count::CountInt(p.count)),
        sum: p.sum,
        schema,
        zero_threshold: if p.zero_threshold > 0.0 {
            p.zero_threshold
        } else {
            DEFAULT_ZERO_THRESHOLD
        },
        zero_count: Some(histogram::ZeroCount::ZeroCountInt(p.zero_count)),
        negative_spans,
        negative_deltas,
        negative_counts: Vec::new(),
        positive_spans,
        positive_deltas,
        positive_counts: Vec::new(),
        reset_hint: histogram::ResetHint::Unknown as i32,
        timestamp: p.timestamp,
    })
}

/// Numeric data point values convertible to f64.
trait AsF64: Copy {
    fn as_f64(self) -> f64;
}
impl AsF64 for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}
impl AsF64 for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}
impl AsF64 for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

fn kv_iter<'a>(
    it: impl Iterator<Item = &'a KeyValue>,
) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> {
    it.map(|kv| (kv.key.as_str(), kv.value.as_str()))
}

struct Ctx<'a> {
    common: &'a CommonLabels,
    exemplars: &'a Exemplars,
    opts: &'a TranslateOptions,
    out: &'a mut Translated,
    max_ts: i64,
}

impl Ctx<'_> {
    fn push_sample(&mut self, labels: Vec<Label>, value: f64, ts: i64) {
        self.max_ts = self.max_ts.max(ts);
        self.out.timeseries.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value,
                timestamp: ts,
            }],
            exemplars: Vec::new(),
            histograms: Vec::new(),
        });
    }

    /// The exemplar of a data point of `m`, when one was kept.
    fn exemplar<'b>(
        &self,
        m: &Metric,
        attrs: impl Iterator<Item = (&'b str, Cow<'b, str>)>,
    ) -> Option<Exemplar> {
        if self.exemplars.is_empty() || m.name() != EXEMPLAR_INSTRUMENT {
            return None;
        }
        self.exemplars.get(&series_key(attrs)).map(|e| Exemplar {
            labels: vec![
                Label {
                    name: "span_id".into(),
                    value: crate::trace::hex(&e.span_id),
                },
                Label {
                    name: "trace_id".into(),
                    value: crate::trace::hex(&e.trace_id),
                },
            ],
            value: e.value,
            timestamp: to_millis(e.time),
        })
    }

    fn meta(&mut self, kind: MetricType, family: &str, m: &Metric) {
        if self.opts.metadata {
            self.out.metadata.push(MetricMetadata {
                r#type: kind as i32,
                metric_family_name: family.to_owned(),
                help: m.description().to_owned(),
                unit: m.unit().to_owned(),
            });
        }
    }
}

fn translate_metric<T: AsF64>(ctx: &mut Ctx<'_>, m: &Metric, data: &MetricData<T>) {
    match data {
        MetricData::Gauge(g) => {
            let name = metric_name(m.name(), m.unit(), MetricKind::Gauge);
            ctx.meta(MetricType::Gauge, &name, m);
            let ts = to_millis(g.time());
            for dp in g.data_points() {
                let base = attribute_labels(kv_iter(dp.attributes()), ctx.common);
                ctx.push_sample(finish_labels(&base, &name, None), dp.value().as_f64(), ts);
            }
        }
        MetricData::Sum(s) => {
            if s.temporality() == Temporality::Delta {
                ctx.out.skipped_delta.push(m.name().to_owned());
                return;
            }
            let (kind, mtype) = if s.is_monotonic() {
                (MetricKind::MonotonicCounter, MetricType::Counter)
            } else {
                (MetricKind::NonMonotonicCounter, MetricType::Gauge)
            };
            let name = metric_name(m.name(), m.unit(), kind);
            ctx.meta(mtype, &name, m);
            let ts = to_millis(s.time());
            for dp in s.data_points() {
                let base = attribute_labels(kv_iter(dp.attributes()), ctx.common);
                ctx.push_sample(finish_labels(&base, &name, None), dp.value().as_f64(), ts);
            }
        }
        MetricData::Histogram(h) => {
            if h.temporality() == Temporality::Delta {
                ctx.out.skipped_delta.push(m.name().to_owned());
                return;
            }
            let name = metric_name(m.name(), m.unit(), MetricKind::Histogram);
            ctx.meta(MetricType::Histogram, &name, m);
            let ts = to_millis(h.time());
            for dp in h.data_points() {
                let ex = ctx.exemplar(m, kv_iter(dp.attributes()));
                classic_histogram_point(ctx, &name, dp, ts, ex);
            }
        }
        MetricData::ExponentialHistogram(e) => {
            if e.temporality() == Temporality::Delta {
                ctx.out.skipped_delta.push(m.name().to_owned());
                return;
            }
            let name = metric_name(m.name(), m.unit(), MetricKind::ExponentialHistogram);
            ctx.meta(MetricType::Histogram, &name, m);
            let ts = to_millis(e.time());
            for dp in e.data_points() {
                let ex = ctx.exemplar(m, kv_iter(dp.attributes()));
                native_histogram_point(ctx, &name, dp, ts, ex);
            }
        }
    }
}

fn classic_histogram_point<T: AsF64>(
    ctx: &mut Ctx<'_>,
    name: &str,
    dp: &HistogramDataPoint<T>,
    ts: i64,
    exemplar: Option<Exemplar>,
) {
    let base = attribute_labels(kv_iter(dp.attributes()), ctx.common);
    let bounds: Vec<f64> = dp.bounds().collect();
    let counts: Vec<u64> = dp.bucket_counts().collect();
    ctx.push_sample(
        finish_labels(&base, &format!("{name}_sum"), None),
        dp.sum().as_f64(),
        ts,
    );
    ctx.push_sample(
        finish_labels(&base, &format!("{name}_count"), None),
        dp.count() as f64,
        ts,
    );
    let bucket_name = format!("{name}_bucket");
    // The first bucket whose upper bound holds the value (+Inf past the last bound).
    let mut exemplar_at =
        exemplar.map(|e| (bounds.iter().take_while(|b| **b < e.value).count(), e));
    for (i, (le, c)) in classic_buckets(&bounds, &counts, dp.count())
        .into_iter()
        .enumerate()
    {
        ctx.push_sample(
            finish_labels(&base, &bucket_name, Some(("le", &le))),
            c as f64,
            ts,
        );
        if exemplar_at.as_ref().is_some_and(|(b, _)| *b == i)
            && let (Some((_, e)), Some(series)) =
                (exemplar_at.take(), ctx.out.timeseries.last_mut())
        {
            series.exemplars.push(e);
        }
    }
}

fn native_histogram_point<T: AsF64>(
    ctx: &mut Ctx<'_>,
    name: &str,
    dp: &ExponentialHistogramDataPoint<T>,
    ts: i64,
    exemplar: Option<Exemplar>,
) {
    let pos: Vec<u64> = dp.positive_bucket().counts().collect();
    let neg: Vec<u64> = dp.negative_bucket().counts().collect();
    let input = ExpHistogramInput {
        scale: i32::from(dp.scale()),
        count: dp.count() as u64,
        sum: dp.sum().as_f64(),
        zero_count: dp.zero_count(),
        zero_threshold: dp.zero_threshold(),
        positive: (dp.positive_bucket().offset(), &pos),
        negative: (dp.negative_bucket().offset(), &neg),
        timestamp: ts,
    };
    match exponential_to_native(&input) {
        Ok(h) => {
            let base = attribute_labels(kv_iter(dp.attributes()), ctx.common);
            ctx.max_ts = ctx.max_ts.max(ts);
            ctx.out.timeseries.push(TimeSeries {
                labels: finish_labels(&base, name, None),
                samples: Vec::new(),
                exemplars: exemplar.into_iter().collect(),
                histograms: vec![h],
            });
        }
        Err(e) => ctx.out.errors.push(format!("{name}: {e}")),
    }
}

/// Translates one collection into remote-write series (plus optional metadata).
/// Delta-temporality metrics are skipped and reported in
/// [`Translated::skipped_delta`] (the exporter requests Cumulative temporality).
pub fn translate(rm: &ResourceMetrics, opts: &TranslateOptions) -> Translated {
    translate_with_exemplars(rm, opts, &Exemplars::new())
}

/// [`translate`], with the exemplars of this collection by series key.
pub fn translate_with_exemplars(
    rm: &ResourceMetrics,
    opts: &TranslateOptions,
    exemplars: &Exemplars,
) -> Translated {
    let resource = rm.resource();
    let common = resource_labels(resource.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut out = Translated::default();
    let mut max_ts = 0;
    for sm in rm.scope_metrics() {
        let mut scoped = common.clone();
        if opts.promote_scope_labels {
            let scope = sm.scope();
            scoped
                .labels
                .push(("otel_scope_name".to_owned(), scope.name().to_owned()));
            if let Some(v) = scope.version() {
                scoped
                    .labels
                    .push(("otel_scope_version".to_owned(), v.to_owned()));
            }
        }
        let mut ctx = Ctx {
            common: &scoped,
            exemplars,
            opts,
            out: &mut out,
            max_ts,
        };
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => translate_metric(&mut ctx, m, d),
                AggregatedMetrics::U64(d) => translate_metric(&mut ctx, m, d),
                AggregatedMetrics::I64(d) => translate_metric(&mut ctx, m, d),
            }
        }
        max_ts = ctx.max_ts;
    }
    if opts.target_info && max_ts > 0 {
        if let Some(labels) = target_info_labels(
            resource.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &common,
        ) {
            out.timeseries.push(TimeSeries {
                labels,
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: max_ts,
                }],
                exemplars: Vec::new(),
                histograms: Vec::new(),
            });
        }
    }
    out
}

/// Labels of `target_info`: resource attributes other than `service.name`,
/// `service.namespace`, `service.instance.id`, plus `job`/`instance`. `None` when
/// there are no other attributes (the Collector then omits `target_info`).
pub fn target_info_labels<'a>(
    attrs: impl IntoIterator<Item = (&'a str, Cow<'a, str>)>,
    common: &CommonLabels,
) -> Option<Vec<Label>> {
    let rest: Vec<(&str, Cow<'_, str>)> = attrs
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                *k,
                "service.name" | "service.namespace" | "service.instance.id"
            )
        })
        .collect();
    if rest.is_empty() {
        return None;
    }
    let base = attribute_labels(rest, common);
    Some(finish_labels(&base, TARGET_INFO, None))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn cow(s: &str) -> Cow<'_, str> {
        Cow::Borrowed(s)
    }

    #[test]
    fn metric_name_table() {
        use MetricKind::*;
        let cases: &[(&str, &str, MetricKind, &str)] = &[
            (
                "http.client.request.duration",
                "s",
                Histogram,
                "http_client_request_duration_seconds",
            ),
            (
                "http.client.request.body.size",
                "By",
                Histogram,
                "http_client_request_body_size_bytes",
            ),
            (
                "http.client.response.body.size",
                "By",
                Histogram,
                "http_client_response_body_size_bytes",
            ),
            (
                "http.client.active_requests",
                "{request}",
                NonMonotonicCounter,
                "http_client_active_requests",
            ),
            ("stampede.vus", "{vu}", Gauge, "stampede_vus"),
            ("stampede.vus.max", "{vu}", Gauge, "stampede_vus_max"),
            (
                "stampede.iterations",
                "{iteration}",
                MonotonicCounter,
                "stampede_iterations_total",
            ),
            (
                "stampede.iteration.duration",
                "s",
                Histogram,
                "stampede_iteration_duration_seconds",
            ),
            (
                "stampede.dropped_iterations",
                "{iteration}",
                MonotonicCounter,
                "stampede_dropped_iterations_total",
            ),
            (
                "stampede.checks",
                "{check}",
                MonotonicCounter,
                "stampede_checks_total",
            ),
            // unit already present → not appended again
            ("latency.seconds", "s", Histogram, "latency_seconds"),
            ("foo.ms", "ms", Gauge, "foo_ms_milliseconds"),
            ("foo", "ms", Gauge, "foo_milliseconds"),
            // _total not duplicated, moved to the end
            ("requests.total", "1", MonotonicCounter, "requests_total"),
            ("total.requests", "", MonotonicCounter, "requests_total"),
            // ratio only for gauges with unit 1
            ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
            (
                "cpu.utilization",
                "1",
                NonMonotonicCounter,
                "cpu_utilization",
            ),
            ("hits", "1", MonotonicCounter, "hits_total"),
            ("cache.ratio", "1", Gauge, "cache_ratio"),
            // per units
            ("throughput", "By/s", Gauge, "throughput_bytes_per_second"),
            ("rate", "{req}/s", Gauge, "rate_per_second"),
            ("x", "1/s", Gauge, "x_per_second"),
            // invalid chars and runs of underscores collapse; colons kept
            ("a-b__c..d", "", Gauge, "a_b_c_d"),
            ("ns:metric.x", "", Gauge, "ns:metric_x"),
            ("_leading.", "", Gauge, "leading"),
            // leading digit
            ("5xx.count", "", Gauge, "_5xx_count"),
            // percent, unknown unit passes through cleaned
            ("disk.used", "%", Gauge, "disk_used_percent"),
            ("weird", "foo.bar", Gauge, "weird_foo_bar"),
            ("mem", "MiBy", Gauge, "mem_mebibytes"),
            ("age", "d", Gauge, "age_days"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(name, unit, *kind),
                *want,
                "{name} [{unit}] {kind:?}"
            );
        }
    }

    #[test]
    fn label_sanitising() {
        assert_eq!(
            sanitize_label_name("http.request.method"),
            "http_request_method"
        );
        assert_eq!(sanitize_label_name("stampede.run.id"), "stampede_run_id");
        assert_eq!(sanitize_label_name("1st"), "key_1st");
        assert_eq!(sanitize_label_name("_priv"), "key_priv");
        assert_eq!(sanitize_label_name("__reserved"), "__reserved");
        assert_eq!(sanitize_label_name("a-b c/ü"), "a_b_c__");
        assert_eq!(sanitize_label_name("a__b"), "a__b");
        assert_eq!(sanitize_label_name(""), "");
    }

    #[test]
    fn labels_collide_sort_and_job_instance_win() {
        let common = resource_labels([
            ("service.name", cow("stampede")),
            ("service.namespace", cow("perf")),
            ("service.instance.id", cow("abc")),
        ]);
        let base = attribute_labels(
            [
                ("z.k", cow("2")),
                ("z_k", cow("3")),
                ("z-k", cow("1")),
                ("job", cow("ignored")),
                ("http.request.method", cow("GET")),
                ("empty", cow("")),
            ],
            &common,
        );
        let labels = finish_labels(&base, "m_total", None);
        let got: Vec<(&str, &str)> = labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("__name__", "m_total"),
                ("http_request_method", "GET"),
                ("instance", "abc"),
                ("job", "perf/stampede"),
                // sorted by original key: "z-k" < "z.k" < "z_k"
                ("z_k", "1;2;3"),
            ]
        );
        // without namespace job is just the service name
        let c = resource_labels([("service.name", cow("svc"))]);
        assert_eq!(c.labels, vec![("job".to_owned(), "svc".to_owned())]);
    }

    #[test]
    fn le_formatting() {
        assert_eq!(format_le(0.005), "0.005");
        assert_eq!(format_le(1.0), "1");
        assert_eq!(format_le(0.0005), "0.0005");
        assert_eq!(format_le(7.5), "7.5");
        assert_eq!(format_le(60.0), "60");
        assert_eq!(format_le(1e-9), "0.000000001");
        assert_eq!(format_le(1e21), "1000000000000000000000");
        assert_eq!(format_le(f64::INFINITY), "+Inf");
        assert_eq!(format_le(0.0), "0");
    }

    #[test]
    fn classic_buckets_are_cumulative_with_inf() {
        let b = classic_buckets(&[0.005, 0.01, 1.0], &[1, 2, 3, 4], 10);
        assert_eq!(
            b,
            vec![
                ("0.005".to_owned(), 1),
                ("0.01".to_owned(), 3),
                ("1".to_owned(), 6),
                ("+Inf".to_owned(), 10)
            ]
        );
    }

    #[test]
    fn target_info_only_with_extra_attributes() {
        let common = resource_labels([
            ("service.name", cow("s")),
            ("service.instance.id", cow("i")),
        ]);
        assert!(
            target_info_labels(
                [
                    ("service.name", cow("s")),
                    ("service.instance.id", cow("i"))
                ],
                &common
            )
            .is_none()
        );
        let l = target_info_labels(
            [
                ("service.name", cow("s")),
                ("service.instance.id", cow("i")),
                ("service.version", cow("0.1.0")),
            ],
            &common,
        )
        .unwrap_or_default();
        let got: Vec<(&str, &str)> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("__name__", "target_info"),
                ("instance", "i"),
                ("job", "s"),
                ("service_version", "0.1.0")
            ]
        );
    }

    #[test]
    fn exp_buckets_simple_offset_plus_one() {
        // OTel offset 3, counts [1,2,0,0,0,0,5]: prom indices 4,5 then gap 4 then 10.
        let (spans, deltas) = convert_buckets_layout(3, &[1, 2, 0, 0, 0, 0, 5], 0);
        assert_eq!(
            spans,
            vec![
                BucketSpan {
                    offset: 4,
                    length: 2
                },
                BucketSpan {
                    offset: 4,
                    length: 1
                }
            ]
        );
        assert_eq!(deltas, vec![1, 1, 3]);
        // small gap (2) encoded inside the span as zero buckets
        let (spans, deltas) = convert_buckets_layout(-2, &[3, 0, 0, 1], 0);
        assert_eq!(
            spans,
            vec![BucketSpan {
                offset: -1,
                length: 4
            }]
        );
        assert_eq!(deltas, vec![3, -3, 0, 1]);
        // empty
        assert_eq!(convert_buckets_layout(0, &[0, 0], 0), (vec![], vec![]));
    }

    #[test]
    fn exp_buckets_downscale_merges() {
        // scale_down 1: OTel idx 0,1 → 0 → prom 1; idx 2,3 → 1 → prom 2; idx -1 → -1 → prom 0
        let (spans, deltas) = convert_buckets_layout(-1, &[1, 2, 3, 4, 5], 1);
        assert_eq!(
            spans,
            vec![BucketSpan {
                offset: 0,
                length: 3
            }]
        );
        // counts per prom bucket: [1, 5, 9]
        assert_eq!(deltas, vec![1, 4, 4]);
    }

    #[test]
    fn exponential_scale_clamp_and_errors() {
        let counts = [1u64, 1, 1, 1];
        let mut p = ExpHistogramInput {
            scale: 10,
            count: 5,
            sum: 3.0,
            zero_count: 1,
            zero_threshold: 0.0,
            positive: (0, &counts),
            negative: (0, &[]),
            timestamp: 42,
        };
        let h = exponential_to_native(&p).unwrap_or_default();
        assert_eq!(h.schema, 8);
        assert_eq!(
            h.positive_spans,
            vec![BucketSpan {
                offset: 1,
                length: 1
            }]
        );
        assert_eq!(h.positive_deltas, vec![4]);
        assert_eq!(h.zero_threshold, DEFAULT_ZERO_THRESHOLD);
        assert_eq!(h.zero_count, Some(histogram::ZeroCount::ZeroCountInt(1)));
        assert_eq!(h.count, Some(histogram::Count::CountInt(5)));
        assert_eq!(h.timestamp, 42);
        p.scale = -5;
        assert_eq!(
            exponential_to_native(&p),
            Err(TranslateError::ScaleTooSmall(-5))
        );
    }

    /// Decodes spans+deltas back to (prom index, count).
    fn decode(spans: &[BucketSpan], deltas: &[i64]) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut idx: i64 = 0;
        let mut cur: i64 = 0;
        let mut d = deltas.iter();
        for s in spans {
            // later span offsets are relative to the end of the previous span
            idx += i64::from(s.offset);
            for _ in 0..s.length {
                cur += d.next().copied().unwrap_or(0);
                out.push((idx, cur));
                idx += 1;
            }
        }
        assert!(d.next().is_none(), "more deltas than span lengths");
        out
    }

    #[test]
    fn property_exp_buckets_preserve_counts_and_boundaries() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..2000 {
            let scale: i32 = rng.i32(-4..=20);
            let scale_down = (scale - 8).max(0) as u32;
            let offset: i32 = rng.i32(-300..=300);
            let n = rng.usize(0..=40);
            let counts: Vec<u64> = (0..n)
                .map(|_| if rng.bool() { 0 } else { rng.u64(1..=1000) })
                .collect();
            let (spans, deltas) = convert_buckets_layout(offset, &counts, scale_down);
            let decoded = decode(&spans, &deltas);
            // all counts non-negative, total preserved
            assert!(decoded.iter().all(|&(_, c)| c >= 0));
            let total: i64 = decoded.iter().map(|&(_, c)| c).sum();
            assert_eq!(total, counts.iter().sum::<u64>() as i64);
            // every non-empty OTel bucket lands in the prom bucket containing it:
            // OTel i at scale s covers exponents (i/2^s, (i+1)/2^s];
            // prom j at schema s' = s - k covers ((j-1)/2^s', j/2^s'].
            let k = scale_down;
            for (i, &c) in counts.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                let oi = i64::from(offset) + i as i64;
                let j = (oi >> k) + 1;
                assert!((j - 1) << k <= oi && oi < j << k, "bucket {oi} -> {j}");
                assert!(
                    decoded
                        .iter()
                        .any(|&(idx, cnt)| idx == j && cnt >= c as i64)
                );
            }
            // strictly increasing indices
            assert!(decoded.windows(2).all(|w| w[0].0 < w[1].0));
            // no zero-length spans, later span offsets > 2
            assert!(spans.iter().all(|s| s.length > 0));
            assert!(spans.iter().skip(1).all(|s| s.offset > 2));
        }
    }

    /// A cumulative collection of `http.client.request.duration` (bounds 0.005, 0.01, 1) with
    /// one series, and the exemplars of that series.
    pub(crate) fn collection_with_exemplar(value: f64) -> (ResourceMetrics, Exemplars) {
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry_sdk::metrics::{SdkMeterProvider, reader::MetricReader};
        let reader = crate::metrics::SharedReader::new(Temporality::Cumulative);
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let h = provider
            .meter("stampede")
            .f64_histogram(EXEMPLAR_INSTRUMENT)
            .with_unit("s")
            .with_boundaries(vec![0.005, 0.01, 1.0])
            .build();
        let attrs = [
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("server.port", 8080),
        ];
        h.record(value, &attrs);
        let mut rm = ResourceMetrics::default();
        assert!(reader.collect(&mut rm).is_ok());
        let key = series_key(attrs.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())));
        let mut ex = Exemplars::new();
        ex.insert(
            key,
            crate::metrics::Exemplar {
                trace_id: [0xab; 16],
                span_id: [0xcd; 8],
                value,
                time: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            },
        );
        (rm, ex)
    }

    #[test]
    fn an_exemplar_goes_on_the_bucket_its_value_falls_in() {
        for (value, want_le) in [
            (0.007, "0.01"),
            (0.01, "0.01"),
            (0.002, "0.005"),
            (2.0, "+Inf"),
        ] {
            let (rm, ex) = collection_with_exemplar(value);
            let t = translate_with_exemplars(&rm, &TranslateOptions::default(), &ex);
            let with: Vec<&TimeSeries> = t
                .timeseries
                .iter()
                .filter(|ts| !ts.exemplars.is_empty())
                .collect();
            assert_eq!(with.len(), 1, "{value}: one series carries it");
            let le = with[0]
                .labels
                .iter()
                .find(|l| l.name == "le")
                .map(|l| l.value.as_str());
            assert_eq!(le, Some(want_le), "{value}");
            let e = &with[0].exemplars[0];
            assert_eq!(e.value, value);
            assert_eq!(e.timestamp, 1_700_000_000_123);
            let labels: Vec<(&str, &str)> = e
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            let (tid, sid) = ("ab".repeat(16), "cd".repeat(8));
            assert_eq!(
                labels,
                [("span_id", sid.as_str()), ("trace_id", tid.as_str())]
            );
            let runes: usize = e.labels.iter().map(|l| l.name.len() + l.value.len()).sum();
            assert!(runes <= 128, "Prometheus' exemplar label limit");
            // Without exemplars nothing changes.
            let plain = translate(&rm, &TranslateOptions::default());
            assert!(plain.timeseries.iter().all(|ts| ts.exemplars.is_empty()));
        }
    }

    #[test]
    fn translate_via_sdk_manual_reader() {
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry_sdk::Resource;
        use opentelemetry_sdk::metrics::{SdkMeterProvider, reader::MetricReader};

        let reader = crate::metrics::SharedReader::new(Temporality::Cumulative);
        let provider = SdkMeterProvider::builder()
            .with_resource(
                Resource::builder_empty()
                    .with_attributes([
                        KeyValue::new("service.name", "stampede"),
                        KeyValue::new("service.instance.id", "inst-1"),
                        KeyValue::new("service.version", "0.1.0"),
                    ])
                    .build(),
            )
            .with_reader(reader.clone())
            .build();
        let meter = provider.meter("stampede");
        let h = meter
            .f64_histogram("http.client.request.duration")
            .with_unit("s")
            .with_boundaries(vec![0.005, 0.01, 1.0])
            .build();
        let attrs = [
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("stampede.run.id", "r1"),
        ];
        for v in [0.001, 0.007, 0.5, 2.0, 3.0] {
            h.record(v, &attrs);
        }
        let c = meter
            .u64_counter("stampede.iterations")
            .with_unit("{iteration}")
            .build();
        c.add(7, &[]);
        let ud = meter
            .i64_up_down_counter("http.client.active_requests")
            .with_unit("{request}")
            .build();
        ud.add(-2, &[]);
        let mut rm = ResourceMetrics::default();
        assert!(reader.collect(&mut rm).is_ok());
        let t = translate(&rm, &TranslateOptions::default());
        let find = |name: &str, le: Option<&str>| -> Option<f64> {
            t.timeseries.iter().find_map(|ts| {
                let n = ts
                    .labels
                    .iter()
                    .any(|l| l.name == "__name__" && l.value == name);
                let l = match le {
                    Some(le) => ts.labels.iter().any(|l| l.name == "le" && l.value == le),
                    None => true,
                };
                (n && l).then(|| ts.samples[0].value)
            })
        };
        let b = "http_client_request_duration_seconds";
        assert_eq!(find(&format!("{b}_count"), None), Some(5.0));
        assert_eq!(
            find(&format!("{b}_sum"), None),
            Some(0.001 + 0.007 + 0.5 + 2.0 + 3.0)
        );
        assert_eq!(find(&format!("{b}_bucket"), Some("0.005")), Some(1.0));
        assert_eq!(find(&format!("{b}_bucket"), Some("0.01")), Some(2.0));
        assert_eq!(find(&format!("{b}_bucket"), Some("1")), Some(3.0));
        assert_eq!(find(&format!("{b}_bucket"), Some("+Inf")), Some(5.0));
        assert_eq!(find("stampede_iterations_total", None), Some(7.0));
        assert_eq!(find("http_client_active_requests", None), Some(-2.0));
        assert_eq!(find("target_info", None), Some(1.0));
        // labels sorted, job/instance present, timestamps set
        for ts in &t.timeseries {
            assert!(ts.labels.windows(2).all(|w| w[0].name < w[1].name));
            assert!(
                ts.labels
                    .iter()
                    .any(|l| l.name == "job" && l.value == "stampede")
            );
            assert!(
                ts.labels
                    .iter()
                    .any(|l| l.name == "instance" && l.value == "inst-1")
            );
            assert!(ts.samples[0].timestamp > 1_600_000_000_000);
        }
        let dur = t
            .timeseries
            .iter()
            .find(|ts| {
                ts.labels
                    .iter()
                    .any(|l| l.value == "http_client_request_duration_seconds_count")
            })
            .map(|ts| ts.labels.clone())
            .unwrap_or_default();
        let names: Vec<&str> = dur.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "__name__",
                "http_request_method",
                "instance",
                "job",
                "stampede_run_id"
            ]
        );
        assert_eq!(t.sample_count(), 6 + 2 + 1);
        assert!(t.skipped_delta.is_empty());
    }
}
