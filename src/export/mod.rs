//! Metric exporters (collection → translate → encode → queue → send).

pub mod remote_write;
