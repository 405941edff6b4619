//! Prometheus remote-write 1.0 protobuf messages, hand-written with `prost` derives.
//!
//! Flow: collection → translate → **encode (these messages)** → queue → send.
//!
//! Field numbers and wire types were checked against the Prometheus sources
//! `prompb/remote.proto` (message `WriteRequest`: `timeseries = 1`, `reserved 2`,
//! `metadata = 3`) and `prompb/types.proto` (`Sample`, `TimeSeries` with
//! `exemplars = 3` and `histograms = 4`, `Label`, `MetricMetadata` with
//! `type = 1`, `metric_family_name = 2`, `help = 4`, `unit = 5`, `Histogram`
//! fields 1–15 incl. the `count` / `zero_count` oneofs and the `sint32`/`sint64`
//! zig-zag fields, and `BucketSpan { sint32 offset = 1; uint32 length = 2; }`).
//! `Histogram.custom_values = 16` is documented upstream as "DO NOT use in remote
//! write clients" and is therefore omitted. `Exemplar { repeated Label labels = 1; double
//! value = 2; int64 timestamp = 3; }` carries the `trace_id`/`span_id` of the slowest sampled
//! request on a classic histogram's bucket series (Prometheus stores them with
//! `--enable-feature=exemplar-storage`; their labels are limited to 128 UTF-8 characters in
//! all, which `trace_id` (32 hex) and `span_id` (16 hex) keep well within).

/// `prometheus.WriteRequest` — the body of one remote-write POST (before snappy).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WriteRequest {
    /// The time series in this request (field 1).
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Optional metric metadata (field 3; field 2 is reserved upstream).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: a label set plus float samples and/or native histograms.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TimeSeries {
    /// Labels, sorted by name, including `__name__` (field 1).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples (field 2).
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars (field 3).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histogram samples (field 4).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Exemplar`: a sample's trace, with its value and time.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Exemplar {
    /// Labels, e.g. `trace_id` and `span_id` (field 1).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Value (field 2, `double`).
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Timestamp in milliseconds since the Unix epoch (field 3, `int64`).
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Label {
    /// Label name (field 1).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value (field 2).
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: one float value at a millisecond timestamp.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Sample {
    /// Value (field 1, `double`).
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Timestamp in milliseconds since the Unix epoch (field 2, `int64`).
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricMetadata {
    /// Metric type (field 1, enum [`metric_metadata::MetricType`]).
    #[prost(enumeration = "metric_metadata::MetricType", tag = "1")]
    pub r#type: i32,
    /// Metric family name (field 2), e.g. `http_client_request_duration_seconds`.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Help text (field 4).
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit (field 5).
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Nested types of [`MetricMetadata`].
pub mod metric_metadata {
    /// `prometheus.MetricMetadata.MetricType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// UNKNOWN = 0
        Unknown = 0,
        /// COUNTER = 1
        Counter = 1,
        /// GAUGE = 2
        Gauge = 2,
        /// HISTOGRAM = 3
        Histogram = 3,
        /// GAUGEHISTOGRAM = 4
        Gaugehistogram = 4,
        /// SUMMARY = 5
        Summary = 5,
        /// INFO = 6
        Info = 6,
        /// STATESET = 7
        Stateset = 7,
    }
}

/// `prometheus.Histogram`: a native (sparse, exponential) histogram sample.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Histogram {
    /// Observation count (oneof `count`: `count_int = 1` / `count_float = 2`).
    #[prost(oneof = "histogram::Count", tags = "1, 2")]
    pub count: Option<histogram::Count>,
    /// Sum of observations (field 3).
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema, -4..=8 (field 4, `sint32`).
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Width of the zero bucket (field 5).
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Zero-bucket count (oneof `zero_count`: `zero_count_int = 6` / `zero_count_float = 7`).
    #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
    pub zero_count: Option<histogram::ZeroCount>,
    /// Negative bucket spans (field 8).
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Delta-encoded negative bucket counts (field 9, `sint64`).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Absolute negative counts for float histograms (field 10).
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Positive bucket spans (field 11).
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Delta-encoded positive bucket counts (field 12, `sint64`).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Absolute positive counts for float histograms (field 13).
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Counter-reset hint (field 14, enum [`histogram::ResetHint`]).
    #[prost(enumeration = "histogram::ResetHint", tag = "14")]
    pub reset_hint: i32,
    /// Timestamp in milliseconds (field 15, `int64`).
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// Nested types of [`Histogram`].
pub mod histogram {
    /// Oneof `count`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Count {
        /// Integer count (field 1, `uint64`).
        #[prost(uint64, tag = "1")]
        CountInt(u64),
        /// Float count (field 2, `double`).
        #[prost(double, tag = "2")]
        CountFloat(f64),
    }

    /// Oneof `zero_count`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum ZeroCount {
        /// Integer zero count (field 6, `uint64`).
        #[prost(uint64, tag = "6")]
        ZeroCountInt(u64),
        /// Float zero count (field 7, `double`).
        #[prost(double, tag = "7")]
        ZeroCountFloat(f64),
    }

    /// `prometheus.Histogram.ResetHint`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum ResetHint {
        /// UNKNOWN = 0: the receiver must detect resets itself (always safe).
        Unknown = 0,
        /// YES = 1
        Yes = 1,
        /// NO = 2
        No = 2,
        /// GAUGE = 3
        Gauge = 3,
    }
}

/// `prometheus.BucketSpan`: a run of consecutive buckets.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span (or the starting bucket index for the first span) (field 1, `sint32`).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of consecutive buckets (field 2, `uint32`).
    #[prost(uint32, tag = "2")]
    pub length: u32,
}
