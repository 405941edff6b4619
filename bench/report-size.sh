#!/usr/bin/env bash
# Size and generation time of the HTML report (and of the summary JSON with its timeline) for a
# long run: 10 request names against the embedded target. A 10-minute run with a 1 s timeline
# has 600 intervals; by default this makes the same number of intervals in 60 s with a 100 ms
# timeline (DURATION=10m INTERVAL=1s for the real thing). Not a timed test: prints numbers.
# KEEP=PATH keeps a copy of the summary JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60s}
INTERVAL=${INTERVAL:-100ms}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/stampede}
[ -x "$BIN" ] || cargo build --release -q
PORT=${PORT:-18499}
"$BIN" target --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
TARGET=$!
trap 'kill $TARGET' EXIT
sleep 0.5
DIR=$(mktemp -d)
{
    echo '[[scenarios]]'
    echo 'name = "long"'
    echo 'vus = 10'
    echo "duration = \"$DURATION\""
    echo 'requests = ['
    for i in 0 1 2 3 4 5 6 7 8 9; do
        echo "  { name = \"name-$i\", url = \"http://127.0.0.1:$PORT/delay/$((i + 1))\" },"
    done
    echo ']'
} >"$DIR/long.toml"
"$BIN" run "$DIR/long.toml" --quiet --no-metrics --timeline-interval "$INTERVAL" \
    --summary-json "$DIR/summary.json" >/dev/null
start=$(date +%s.%N)
"$BIN" report "$DIR/summary.json" -o "$DIR/report.html"
end=$(date +%s.%N)
intervals=$(python3 -c "import json,sys;print(len(json.load(open(sys.argv[1]))['timeline']['intervals']))" "$DIR/summary.json")
printf 'run %s, timeline %s: %s intervals, 10 names\n' "$DURATION" "$INTERVAL" "$intervals"
printf 'summary.json: %s bytes\n' "$(stat -c %s "$DIR/summary.json")"
printf 'report.html:  %s bytes\n' "$(stat -c %s "$DIR/report.html")"
printf 'stampede report: %.3f s\n' "$(echo "$end - $start" | bc)"
[ -n "${KEEP:-}" ] && cp "$DIR/summary.json" "$KEEP"; rm -rf "$DIR"
