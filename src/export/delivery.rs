//! Delivery facts: what an exporter delivered and did not, in its own unit. The exporters fill
//! them in; `report` words them.

use serde::Serialize;

/// What an exporter counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Prometheus samples (remote-write).
    #[default]
    Samples,
    /// OTLP data points.
    DataPoints,
    /// OTLP spans (client spans of sampled requests).
    Spans,
}

impl Unit {
    /// The unit's name for `n` of it ("1 sample", "2 data points").
    pub fn name(self, n: u64) -> &'static str {
        match (self, n == 1) {
            (Unit::Samples, true) => "sample",
            (Unit::Samples, false) => "samples",
            (Unit::DataPoints, true) => "data point",
            (Unit::DataPoints, false) => "data points",
            (Unit::Spans, true) => "span",
            (Unit::Spans, false) => "spans",
        }
    }
}

/// What one exporter delivered by the end of the run. Every unit the exporter took on is in
/// exactly one of `delivered`, `dropped`, `rejected`, `given_up` or `pending`, except that an
/// OTLP exporter with cumulative temporality counts only the latest collection as not
/// delivered (each export carries every total so far, so it supersedes the failed ones).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The exporter, e.g. `remote_write http://host:9090/api/v1/write` (credentials removed).
    pub exporter: String,
    /// What the counts count.
    pub unit: Unit,
    /// Delivered (the receiver answered success).
    pub delivered: u64,
    /// Dropped before sending because the queue was full (oldest first).
    pub dropped: u64,
    /// Refused by the receiver for good (HTTP 4xx other than 429, a permanent gRPC status, or
    /// an OTLP partial success).
    pub rejected: u64,
    /// Given up after the retries.
    pub given_up: u64,
    /// Still queued or in flight when the flush deadline came.
    pub pending: u64,
    /// Requests (batches, exports) that succeeded.
    pub requests: u64,
    /// Bytes delivered, when the exporter knows (compressed remote-write bodies).
    pub bytes: Option<u64>,
    /// Failed attempts, retries included.
    pub failed_attempts: u64,
    /// Whether the last attempt (the final flush) failed.
    pub last_failed: bool,
    /// The cause of the last failure, when one happened (credentials never included).
    pub last_error: Option<String>,
    /// A likely misconfiguration behind the failures, in a few words.
    pub hint: Option<String>,
}

impl Delivery {
    /// Units not delivered: dropped, rejected, given up or still pending.
    pub fn not_delivered(&self) -> u64 {
        self.dropped + self.rejected + self.given_up + self.pending
    }
}

/// What an exporter is still waiting for during the final flush.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Waiting {
    /// The exporter.
    pub exporter: String,
    /// What the counts count.
    pub unit: Unit,
    /// Units queued or in flight.
    pub pending: u64,
    /// Requests (batches, exports) queued or in flight.
    pub requests: u64,
    /// Failed attempts so far.
    pub failed_attempts: u64,
    /// The cause of the last failure, if any.
    pub last_error: Option<String>,
}
