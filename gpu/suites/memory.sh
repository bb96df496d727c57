# What makes the 3B reference engine's snapshot image: private dirty memory after each start-up phase, after
# sleep level 2, and what the CUDA checkpoint adds (bench/memory-probe.mjs); no CRIU. Table printed last.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
MODEL=/var/tmp/ref-3b
PORT=8300
step make-3b 120 python3 -m stasis_engine.reference make-model --config 3b --out $MODEL --device cuda
python3 -m stasis_engine.reference serve --model-dir $MODEL --port $PORT --device cuda ${SERVER_ARGS:---cuda-graph-sizes 1} > /tmp/server.log 2>&1 &
server=$!
for _ in $(seq 1 200); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 1; done
for i in 1 2 3; do curl -sf http://127.0.0.1:$PORT/v1/completions -H 'content-type: application/json' -d '{"prompt":"Hello there","max_tokens":16}' >/dev/null; done
curl -sf -X POST "http://127.0.0.1:$PORT/sleep?level=2" > /tmp/sleep.json
engine=$(pgrep -o -f "stasis_engine.reference engine")
step probe 120 node bench/memory-probe.mjs "$engine"
kill $server 2>/dev/null || true
{
  echo "== start-up phases (ms, private dirty MB after the phase)"
  grep "^stasis-phase" /tmp/server.log | sed 's/^stasis-phase //' | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.trim().split("\n")){const j=JSON.parse(l);console.log(j.phase.padEnd(20),String(j.ms).padStart(10),String(j.private_dirty_mb).padStart(8))}})'
  echo "== after sleep level 2"; cut -c1-600 /tmp/sleep.json; echo
  echo "== CUDA checkpoint"; cat "$OUT/probe.log"
} > "$OUT/memory.txt"
echo; echo "== results"; cat "$OUT/memory.txt"; cat "$OUT/steps.txt"
