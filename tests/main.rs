//! One integration-test binary. Topics:
//! - `engine`: the load engine against the embedded target and a real nginx (counts, open
//!   model, coordinated omission, error classes, signals);
//! - `http2`: HTTP/2 against nginx (h2c, h2 over TLS) and a resetting h2 server: counts,
//!   shared connections, the server's stream limit, GOAWAY, RST_STREAM;
//! - `http2_hostile`: HTTP/2 against hostile servers (floods, HPACK bombs, endless 1xx and
//!   bodies, no streams, lying content-length, GOAWAY on every request, no h2 by ALPN, refused
//!   connects): bounded RSS and wall time, exit codes, counts equal to what the peer saw;
//! - `cli`: exit codes, bad configs named precisely, every file in config/ validates;
//! - `exporter_prom`: the remote-write exporter alone against a real Prometheus;
//! - `remote_write`: whole runs pushed into a real Prometheus, totals read back exactly;
//! - `otlp`: whole runs through the real OpenTelemetry Collector into Prometheus;
//! - `layers`: imports point down the layer order stated in src/lib.rs;
//! - `dashboard`: every Grafana panel query against real data from both paths;
//! - `display`: the live view in a real terminal (tmux), CI status lines, units, colour;
//! - `report`: the summary's timeline, JUnit and Markdown outputs, run comparison;
//! - `distributed`: N processes as execution segments with a coordinator, against nginx;
//! - `generator`: the generator's own CPU: a starved run warns, a light one does not;
//! - `kubernetes`: deploy/kubernetes renders and validates against the Kubernetes API schema, and
//!   the Dockerfile lints;
//! - `tracing`: traceparent headers, exemplars in Prometheus by both paths, client spans;
//! - `capacity`: windowed thresholds, abort_on_fail, and the capacity search (`find-max`).

mod support;

mod capacity;
mod cli;
mod dashboard;
mod display;
mod distributed;
mod engine;
mod exporter_prom;
mod generator;
mod http2;
mod http2_hostile;
mod kubernetes;
mod layers;
mod otlp;
mod remote_write;
mod report;
mod tracing;
