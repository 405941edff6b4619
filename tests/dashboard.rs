//! Grafana panel queries against real Prometheus data (filled in by the dashboard work).
