# The real vLLM on the GPU: a model shape generated, a stock `vllm serve` captured with stasis, the vLLM GPU tests
# against that snapshot, then `stasis bench` through `stasis serve` (all four strategies). vLLM itself is installed
# by an earlier call that carried the archive (gpu/vllm/README.md; the harness's "install" step below repeats
# nothing when it is there). Results in $OUT/bench (results.json names the engine, the model and the GPU).
# Knobs: SHAPE (3b|8b, default 3b), STRATEGIES, REPEAT (3), REPEAT_STARTS (1), TESTS=0 (skip the GPU tests),
# COMPARE ("label|bench args|ENV=V ..."; more benches of the same snapshot right after, through the same daemon),
# SERVER_ARGS (more `vllm serve` flags), CAPTURE_LIMIT, BENCH_LIMIT (seconds), KEEP=1 (keep the snapshot: a later
# call on the same machine skips the capture).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
SHAPE=${SHAPE:-3b}
NAME=${NAME:-vllm$SHAPE} # NAME: a snapshot an earlier call kept (KEEP=1) is benched without a capture
MODEL=/var/tmp/model-$SHAPE
PORT=8000
step vllm-install 300 bash gpu/vllm/device/install.sh
source gpu/vllm/env.sh
[ -f $MODEL/config.json ] || step "make-model-$SHAPE" 240 python3 gpu/vllm/device/make_model.py $MODEL --shape "$SHAPE"
# The README's vLLM recipe, as written there: a stock `vllm serve` with sleep mode, the worker extension and the
# dev-mode control API, stasis_engine on its PYTHONPATH (here vLLM itself is on it too: /opt/vllm-site, no venv).
SERVE=(vllm serve $MODEL --host 127.0.0.1 --port $PORT --enable-sleep-mode
       --worker-extension-cls stasis_engine.vllm.StasisWorkerExtension --max-model-len 4096 --gpu-memory-utilization 0.5
       ${SERVER_ARGS:-})
if [ ! -d $STASIS_HOME/snapshots/$NAME ]; then
  step "capture-$SHAPE" "${CAPTURE_LIMIT:-420}" stasis capture $NAME --engine vllm --ready-url http://127.0.0.1:$PORT/health \
    --ready-timeout 400 --warmup 3 --env VLLM_SERVER_DEV_MODE=1 --env PYTHONPATH=$PWD/python:$VLLM_SITE \
    --env VLLM_NO_USAGE_STATS=1 --env HF_HUB_OFFLINE=1 --env VLLM_USE_FLASHINFER_SAMPLER=0 -- "${SERVE[@]}"
fi
if [ ! -d $STASIS_HOME/snapshots/$NAME ]; then
  dir=$(newest_instance)
  for f in "$dir"stdout.log "$dir"stderr.log; do [ -f "$f" ] && { echo "== $f"; tail -60 "$f"; }; done
  cat "$OUT/steps.txt"; exit 1
fi
# What the snapshot holds: the image by file, the GPU state by process, the weights.
stasis inspect $NAME > "$OUT/inspect.txt" 2>&1 || true
{ du -sh $STASIS_HOME/snapshots/$NAME/{images,weights,caches} || true
  ls -la $STASIS_HOME/snapshots/$NAME/images | sort -k5 -n | tail -6
  node -e 'const m=require(process.argv[1]); console.log(JSON.stringify({gpu: m.gpu, tree: m.tree}))' \
    $STASIS_HOME/snapshots/$NAME/manifest.json || true; } > "$OUT/snapshot.txt" 2>&1
# vLLM's own account of its memory: model, CUDA graphs, KV cache, and what sleep freed and left.
grep -hE "Model loading took|Graph capturing finished|Available KV cache memory|GPU KV cache size|sleep freed|still in use|torch.compile took" \
  $STASIS_HOME/snapshots/$NAME/logs/*.log 2>/dev/null | sed 's/^.*\] //' | cut -c1-200 >> "$OUT/snapshot.txt" || true
cat "$OUT/snapshot.txt"
if [ "${TESTS:-1}" = 1 ]; then
  step "gpu-tests-$SHAPE" 300 env STASIS_VLLM_SNAPSHOT=$NAME STASIS_VLLM_URL=http://127.0.0.1:$PORT \
    python3 -m pytest -q -x python/tests/gpu/test_vllm_gpu.py
fi
# Through `stasis serve`, as a fleet's controller restores: the daemon keeps the weights pinned for the next restore.
stasis serve --pin-weights 2> "$LOGS/serve.log" & daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
sleep 2
step "bench-$SHAPE" "${BENCH_LIMIT:-560}" stasis bench $NAME --strategies "${STRATEGIES:-cold,warm,restore-hot,restore-cold}" \
  --repeat "${REPEAT:-3}" --repeat-starts "${REPEAT_STARTS:-1}" --via api --out "$OUT/bench"
IFS=';' read -ra compare <<< "${COMPARE:-}"
for c in "${compare[@]}"; do
  IFS='|' read -r label args envs <<< "$c"
  # shellcheck disable=SC2086
  step "bench-$label" "${BENCH_LIMIT:-560}" env $envs stasis bench $NAME --strategies restore-hot --repeat "${REPEAT:-3}" \
    --via api $args --out "$LOGS/bench-$label"
done
kill $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true
cp "$LOGS/serve.log" "$OUT/bench/" 2>/dev/null || true
[ "${KEEP:-0}" = 1 ] || stasis rm $NAME >/dev/null 2>&1 || true
nvidia-smi --query-gpu=memory.used --format=csv,noheader | sed 's/^/GPU memory used at the end: /' | tee -a "$OUT/steps.txt"
echo; echo "== results"; cat "$OUT/snapshot.txt"
[ -f "$OUT/bench/results.md" ] && cat "$OUT/bench/results.md"
for c in "${compare[@]}"; do
  label=${c%%|*}; echo; echo "== compare: $c"
  sed -n '/^| strategy/,/^$/p;/restore-hot\*\* phases/,/^| first-token/p' "$LOGS/bench-$label/results.md" 2>/dev/null || true
done
echo; cat "$OUT/steps.txt"
