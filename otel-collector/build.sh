#!/usr/bin/env bash
# Builds stampede's OpenTelemetry Collector (otelcol-stampede) from manifest.yaml
# with the OpenTelemetry Collector Builder (ocb).
#
#   otel-collector/build.sh            # build (or reuse) and print the binary path
#   FORCE_REBUILD=1 otel-collector/build.sh
#
# - Works from any working directory; needs only Go (>= 1.26) and access to the
#   Go module proxy.
# - The builder is installed with `go install` into otel-collector/_build/ocb-<version>/.
# - The build goes into otel-collector/_build/ (git-ignored). A sha256 of
#   manifest.yaml is stored next to the binary; while it matches, the previous
#   binary is reused and nothing is compiled.
# - All progress output goes to stderr; the LAST line on stdout is the binary's
#   absolute path, so callers can do: bin="$(otel-collector/build.sh | tail -n1)".
set -euo pipefail

# Keep in sync with the versions in manifest.yaml.
OCB_VERSION="0.165.0"

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
manifest="${script_dir}/manifest.yaml"
build_dir="${script_dir}/_build"
bin_name="otelcol-stampede"
binary="${build_dir}/${bin_name}"
hash_file="${build_dir}/${bin_name}.manifest.sha256"

log() { printf 'otel-collector/build.sh: %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin /usr/lib/go/bin "${HOME:-/root}/go/bin" "${HOME:-/root}/sdk/go/bin"; do
    if [[ -x "${candidate}/go" ]]; then
      PATH="${candidate}:${PATH}"
      export PATH
      break
    fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  log "error: 'go' not found in PATH. Install Go >= 1.26 (https://go.dev/doc/install," \
      "or your distribution's golang package) and re-run ${script_dir}/build.sh"
  exit 1
fi

mkdir -p "${build_dir}"

# Serialize concurrent builds (e.g. several test processes) when flock exists.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${build_dir}/.build.lock"
  flock 9
fi

manifest_hash="$(sha256sum "${manifest}" | cut -d' ' -f1)"

if [[ -z "${FORCE_REBUILD:-}" && -x "${binary}" && -f "${hash_file}" ]] \
   && [[ "$(cat "${hash_file}")" == "${manifest_hash}" ]]; then
  log "manifest unchanged (sha256 ${manifest_hash:0:12}); reusing ${binary}"
  printf '%s\n' "${binary}"
  exit 0
fi

# Install the pinned builder into a private GOBIN, so another `builder` on the
# machine (or in $(go env GOPATH)/bin) never gets used by mistake.
ocb_dir="${build_dir}/ocb-v${OCB_VERSION}"
ocb="${ocb_dir}/builder"
if [[ ! -x "${ocb}" ]]; then
  log "installing go.opentelemetry.io/collector/cmd/builder@v${OCB_VERSION} into ${ocb_dir}"
  GOBIN="${ocb_dir}" go install "go.opentelemetry.io/collector/cmd/builder@v${OCB_VERSION}" >&2
fi

log "building ${bin_name} with $(go version) (this takes a few minutes on a cold Go cache)"
rm -f "${hash_file}"
start=$(date +%s)
(
  cd "${script_dir}"
  # The builder writes generated sources (main.go, components.go, go.mod) and the
  # binary into dist.output_path (./_build).
  "${ocb}" --config "${manifest}" >&2
)
if [[ ! -x "${binary}" ]]; then
  log "error: the builder finished but ${binary} does not exist"
  exit 1
fi
printf '%s\n' "${manifest_hash}" >"${hash_file}"
log "built ${binary} in $(( $(date +%s) - start ))s ($(du -h "${binary}" | cut -f1))"
printf '%s\n' "${binary}"
