#!/usr/bin/env bash
# The example server's benchmark: test server (a) (examples/slow_server.py, 5 s start-up, in-memory state), its
# cold start against stasis restore, side by side in one `stasis bench` run. Drops the page cache before cold cases.
#   bench/example-server.sh [OUT_DIR]     (default bench/results/<date>-<host>/example-server)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/$(date -u +%F)-$(hostname)/example-server}
export STASIS_HOME=$(mktemp -d /tmp/stasis-bench-home.XXXXXX)
trap 'stasis stop --all --grace 1 >/dev/null 2>&1 || true; rm -rf "$STASIS_HOME"' EXIT
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
stasis capture slow --ready-url "http://127.0.0.1:$PORT/health" --canary-url "http://127.0.0.1:$PORT/answer?q=bench" --warmup 3 \
  -- python3 "$PWD/examples/slow_server.py" --port "$PORT" --startup-seconds 5
stasis bench slow --strategies cold,warm,restore-hot,restore-cold --repeat "${REPEAT:-3}" --out "$OUT"
