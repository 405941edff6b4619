#!/usr/bin/env bash
# Runs every check stampede has, installing what the tests need on a fresh Debian machine:
# Debian's prometheus, nginx, wrk and hey; the OpenTelemetry Collector built from upstream Go
# modules (otel-collector/build.sh); the npm packages that type-check the Grafana dashboard.
# Then: cargo fmt --check, clippy -D warnings, the dashboard checks, promtool, all Rust tests
# (unit + integration against real Prometheus, Collector and nginx), and the benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log "system packages"
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v hey >/dev/null || missing+=(hey)
command -v node >/dev/null || missing+=(nodejs npm)
command -v taskset >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in go cargo node npm; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (install Go, Rust and Node.js 20)" >&2; exit 1; }
done

log "OpenTelemetry Collector (otel-collector/build.sh)"
STAMPEDE_OTELCOL_BIN="$(bash otel-collector/build.sh | tail -n 1)"
export STAMPEDE_OTELCOL_BIN
echo "collector: $STAMPEDE_OTELCOL_BIN" >&2

log "npm packages for the dashboard checks"
npm ci --prefix grafana/tests --no-audit --no-fund --loglevel=error

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

log "dashboard: type check against @grafana/schema, generator up to date, referenced files exist"
npm test --prefix grafana/tests

log "promtool check config prometheus/prometheus.yml"
promtool check config prometheus/prometheus.yml

log "otelcol validate"
"$STAMPEDE_OTELCOL_BIN" validate --config otel-collector/config.yaml

log "cargo test (unit + integration against real Prometheus, Collector, nginx)"
ulimit -n 65536 2>/dev/null || true
cargo test --all-targets -- --test-threads 2

log "benchmark smoke run (bench/run.sh --smoke)"
bash bench/run.sh --smoke

log "all checks passed"
