//! stampede: an OpenTelemetry-native HTTP load tester.

pub mod export;
