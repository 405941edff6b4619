//! Metric export: collection → translate → encode → queue → send.
//!
//! Each exporter has its own [`SharedReader`](crate::metrics::SharedReader) and its own loop that
//! collects on its interval; at the end of a run (or on Ctrl-C) [`Pipeline::finish`] does a
//! final collection and export for each, waits for delivery within one deadline, and returns
//! the [`Delivery`] facts (the report words them). Both exporters share one retry policy
//! ([`retry`]) and one connector ([`transport`]). The settings types live in
//! [`crate::config`]; this layer resolves their secrets and builds the senders.

mod delivery;
pub mod otlp;
mod pipeline;
pub mod remote_write;
pub mod retry;
mod spans;
mod transport;

pub use delivery::{Delivery, Unit, Waiting};
pub use pipeline::{ExportError, Pipeline, SLOW_FLUSH};
