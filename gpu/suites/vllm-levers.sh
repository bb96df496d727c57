# Capture-time levers of the real vLLM side by side: one snapshot per variant of the server's environment, then
# restore-hot of every variant through one `stasis serve --pin-weights`, interleaved round by round (these machines
# are noisy). vLLM is installed by an earlier call (gpu/vllm/README.md).
# Knobs: SHAPE (3b|8b), VARIANTS ("label|ENV=V ...|more vllm serve args;..."; the args field is optional, split on
# spaces, no globbing, so a JSON without spaces goes whole: `small||--compilation-config={"cudagraph_capture_sizes":[1,2,4]}`;
# default: the CUDA graphs' pool on the GPU against in the sleep pool),
# ROUNDS (2), REPEAT (3 restores a bench), BENCH=0 (captures only), KEEP=1 (keep the snapshots for the next call),
# CAPTURE_LIMIT, SERVER_ARGS, INSTALL=0 (vLLM installed by this call's caller: skip the install's import check).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
SHAPE=${SHAPE:-3b}
MODEL=/var/tmp/model-$SHAPE${LAYERS:+-L$LAYERS}
PORT=8000
[ "${INSTALL:-1}" = 0 ] || step vllm-install 300 bash gpu/vllm/device/install.sh
source gpu/vllm/env.sh
[ -f $MODEL/config.json ] || step "make-model-$SHAPE" 240 python3 gpu/vllm/device/make_model.py $MODEL --shape "$SHAPE" \
  ${LAYERS:+--layers $LAYERS}
SERVE=(vllm serve $MODEL --host 127.0.0.1 --port $PORT --enable-sleep-mode
       --worker-extension-cls stasis_engine.vllm.StasisWorkerExtension --max-model-len 4096 --gpu-memory-utilization 0.5
       ${SERVER_ARGS:-})
IFS=';' read -ra variants <<< "${VARIANTS:-gpu|STASIS_VLLM_GRAPHS=gpu;sleep|STASIS_VLLM_GRAPHS=sleep}"
names=()
for v in "${variants[@]}"; do
  IFS='|' read -r label envs args <<< "$v"
  name=vllm$SHAPE-$label
  if [ ! -d $STASIS_HOME/snapshots/$name ]; then
    extra=()
    for e in $envs; do extra+=(--env "$e"); done
    set -f; read -ra serve_more <<< "${args:-}"; set +f
    step "capture-$label" "${CAPTURE_LIMIT:-300}" stasis capture $name --engine vllm \
      --ready-url http://127.0.0.1:$PORT/health --ready-timeout 280 --warmup 3 "${VLLM_CAPTURE_ENV[@]}" \
      "${extra[@]}" --json -- "${SERVE[@]}" "${serve_more[@]}"
  fi
  if [ ! -d $STASIS_HOME/snapshots/$name ]; then
    dir=$(newest_instance)
    for f in "$dir"stdout.log "$dir"stderr.log; do [ -f "$f" ] && { echo "== $f"; tail -40 "$f"; }; done
    continue
  fi
  names+=("$name")
  # What each snapshot holds: image and GPU state bytes, and vLLM's and the worker's own account of its GPU memory.
  { echo "== $name ($envs${args:+; $args})"
    du -sb $STASIS_HOME/snapshots/$name/images | cut -f1 | sed 's/^/image bytes: /'
    node -e 'const m=require(process.argv[1]); console.log("gpu state bytes: " + m.gpu.totalBytes +
      "  engine: " + JSON.stringify({wakeTags: m.engine.state.wakeTags}))' $STASIS_HOME/snapshots/$name/manifest.json
    grep -hE "Graph capturing finished|sleep freed|still in use|stasis: |Available KV cache memory" $STASIS_HOME/snapshots/$name/logs/*.log 2>/dev/null |
      sed 's/^.*\] //' | cut -c1-160 || true
    # The workers' GPU memory once asleep (the capture's gpu-memory phase), and any warning of the capture.
    node -e 'const fs = require("fs"); const t = fs.readFileSync(process.argv[1], "utf8"); const j = JSON.parse(t.slice(t.search(/^\{/m)));
      for (const p of j.phases ?? []) if (p.name === "gpu-memory") console.log(p.name + ": " + JSON.stringify(p.detail ?? p));' \
      "$LOGS/capture-$label.log" 2>&1 | cut -c1-1500 || true
    grep -hE "^warning|on the GPU asleep" "$LOGS/capture-$label.log" 2>/dev/null | cut -c1-300 || true
  } >> "$OUT/snapshots.txt" 2>&1
done
cat "$OUT/snapshots.txt" 2>/dev/null || true
if [ "${BENCH:-1}" = 1 ] && [ ${#names[@]} -gt 0 ]; then
  stasis serve --pin-weights 2> "$LOGS/serve.log" & daemon=$!
  trap 'kill $daemon 2>/dev/null || true' EXIT
  sleep 2
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for name in "${names[@]}"; do
      step "bench-$name-$round" 300 stasis bench $name --strategies restore-hot --repeat "${REPEAT:-3}" --via api \
        --out "$LOGS/bench-$name-$round"
    done
  done
  kill $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true
  mkdir -p "$OUT/bench"
  for name in "${names[@]}"; do
    for round in $(seq 1 "${ROUNDS:-2}"); do
      cp "$LOGS/bench-$name-$round/results.json" "$OUT/bench/$name-$round.json" 2>/dev/null || true
    done
  done
fi
# What the restored tree of the first variant holds in host memory, by mapping (what CRIU's image is made of, less
# the CUDA checkpoint's copy of the GPU state, which the driver frees once restored).
if [ "${SMAPS:-1}" = 1 ] && [ ${#names[@]} -gt 0 ]; then
  stasis restore "${names[0]}" --json > "$LOGS/smaps-restore.json" 2> "$LOGS/smaps-restore.err" || true
  pid=$(node -e 'try { const r = require(process.argv[1]); console.log(r.instance.pid ?? "") } catch { }' \
    "$LOGS/smaps-restore.json")
  id=$(node -e 'try { const r = require(process.argv[1]); console.log(r.instance.id ?? "") } catch { }' \
    "$LOGS/smaps-restore.json")
  if [ -n "$pid" ]; then python3 bench/smaps_summary.py "$pid" 14 > "$OUT/smaps.txt" 2>&1 || true; fi
  [ -n "$id" ] && stasis stop "$id" >/dev/null 2>&1 || true
  tail -5 "$LOGS/smaps-restore.err" >> "$OUT/smaps.txt" 2>/dev/null || true
fi
if [ "${KEEP:-0}" != 1 ]; then for name in "${names[@]}"; do stasis rm $name >/dev/null 2>&1 || true; done; fi
echo; echo "== results"; cat "$OUT/snapshots.txt" 2>/dev/null || true
for name in "${names[@]}"; do
  for round in $(seq 1 "${ROUNDS:-2}"); do
    echo; echo "== $name round $round"
    sed -n '/^| strategy/,/^$/p;/restore-hot\*\* phases/,/^| first-token/p' "$LOGS/bench-$name-$round/results.md" \
      2>/dev/null || true
  done
done
echo; echo "== smaps"; cat "$OUT/smaps.txt" 2>/dev/null || true
echo; cat "$OUT/steps.txt"
