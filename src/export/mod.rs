//! Metric export: collection → translate → encode → queue → send.
//!
//! Each exporter has its own [`SharedReader`](crate::metrics::SharedReader) and its own loop that
//! collects on its interval; at the end of a run (or on Ctrl-C) [`Pipeline::finish`] does a
//! final collection and export for each, then waits (bounded) for delivery and reports what was
//! and was not delivered.

pub mod otlp;
mod pipeline;
pub mod remote_write;

pub use pipeline::{ExportError, Pipeline};
pub use remote_write::RemoteWriteConfig;

use serde::{Deserialize, Deserializer};

/// Accepts `[metrics.remote_write]` (one table) or `[[metrics.remote_write]]` (a list).
pub fn remote_write_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<RemoteWriteConfig>, D::Error> {
    use serde::de::Error as _;
    // Decide by shape first so that errors inside a table keep their precise message.
    let v = <figment::value::Value as Deserialize>::deserialize(d)?;
    if v.as_array().is_some() {
        v.deserialize::<Vec<RemoteWriteConfig>>()
            .map_err(|e| D::Error::custom(e.to_string()))
    } else {
        v.deserialize::<RemoteWriteConfig>()
            .map(|c| vec![c])
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}
