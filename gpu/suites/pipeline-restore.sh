# Issue 7, restores only (the cold and warm starts of this configuration were measured with gpu/suites/pipeline.sh):
# the reference engine with Llama-3.2-3B's shape and one CUDA graph size (batch 1: a shorter compile), captured,
# then `stasis bench` restore-hot and restore-cold, with full digest verification and with sizes only.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
MODEL=/var/tmp/ref-3b
PORT=8300
step make-3b 120 python3 -m stasis_engine.reference make-model --config 3b --out $MODEL --device cuda
step capture-3b 200 stasis capture ref3b --engine vllm --ready-url http://127.0.0.1:$PORT/health --ready-timeout 190 --warmup 3 -- python3 -m stasis_engine.reference serve --model-dir $MODEL --port $PORT --device cuda --cuda-graph-sizes 1
( cd $STASIS_HOME/snapshots/ref3b 2>/dev/null && ls -la images | sort -k5 -n | tail -3 && du -sh images weights caches 2>/dev/null && grep -h "stasis-startup" logs/capture-stdout.log logs/capture-stderr.log | cut -c1-1200 ) | tee "$OUT/image-sizes.txt" || true
step bench-full 120 stasis bench ref3b --strategies restore-hot,restore-cold --repeat 3 --verify full --out "$OUT/bench"
step bench-size 60 stasis bench ref3b --strategies restore-hot --repeat 3 --verify size --out /tmp/bench-size
echo; echo "== results"; cat "$OUT/image-sizes.txt" 2>/dev/null || true
[ -f "$OUT/bench/results.md" ] && cat "$OUT/bench/results.md"
[ -f /tmp/bench-size/results.md ] && cat /tmp/bench-size/results.md
echo; cat "$OUT/steps.txt"
