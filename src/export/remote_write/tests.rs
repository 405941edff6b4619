//! In-process receiver tests for the remote-write exporter.
