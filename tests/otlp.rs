//! Whole runs through the real OpenTelemetry Collector (filled in by the OTLP work).
