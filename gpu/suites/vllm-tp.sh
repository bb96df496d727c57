# Tensor-parallel vLLM on several GPUs of one host (docs/tensor-parallel.md): a stock `vllm serve
# --tensor-parallel-size $TP` captured with stasis, restored onto its own GPUs and onto the same GPUs in reverse
# order (`--gpu 1,0`), the canary checked by every restore, then `stasis bench` of it beside TP=1 of the same model
# shape. Needs $TP GPUs (nvidia-h100-x2 for TP=2) and vLLM installed as for gpu/suites/vllm.sh.
# Steps, each skipped when its product is there (the snapshots are kept, so one call's 10 minutes can run a step or
# two and the next call on the warm machine goes on): STEPS (default "facts capture restore move bench baseline").
# Knobs: TP (2), SHAPE (3b|8b, default 3b), SERVER_ARGS (more `vllm serve` flags), SERVER_ENV ("NAME=V ...": more
# server environment, e.g. "NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1" for the published configuration), REFUSAL=1 (first
# capture once with vLLM's custom all-reduce left on: stasis must refuse it, naming --disable-custom-all-reduce),
# STRATEGIES (restore-hot,restore-cold), REPEAT (3), CAPTURE_LIMIT (420), BENCH_LIMIT (400), KEEP=0 (remove the
# snapshots at the end).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
TP=${TP:-2}
SHAPE=${SHAPE:-3b}
MODEL=/var/tmp/model-$SHAPE
PORT=8000
STEPS=${STEPS:-facts capture restore move bench baseline}
has() { [[ " $STEPS " == *" $1 "* ]]; }
gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
if [ "$gpus" -lt "$TP" ]; then
  echo "TP=$TP needs $TP GPUs; this machine has $gpus"; exit 1
fi
step vllm-install 300 bash gpu/vllm/device/install.sh
source gpu/vllm/env.sh
[ -f $MODEL/config.json ] || step "make-model-$SHAPE" 240 python3 gpu/vllm/device/make_model.py $MODEL --shape "$SHAPE"

# What decides how NCCL joins the workers: the links between the GPUs, the driver, the NCCL torch carries
# (ncclCommSuspend exists from 2.29.7 on), the multicast settings env.sh exports.
if has facts; then
  { nvidia-smi topo -m || true
    nvidia-smi --query-gpu=index,uuid,name,driver_version,memory.used --format=csv || true
    python3 -c 'import torch; print("torch", torch.__version__, "nccl", torch.cuda.nccl.version())' || true
    env | grep -E '^(NCCL|TORCH_SYMM|NVSHMEM|VLLM)_' | sort || true; } > "$OUT/facts.txt" 2>&1
  cat "$OUT/facts.txt"
fi

# The README's vLLM recipe with tensor parallelism. What a multi-worker capture refuses (docs/tensor-parallel.md):
# vLLM's custom all-reduce (CUDA IPC) and torch symmetric memory are switched off; NCCL stays as it comes (the
# capture suspends its communicators where the NCCL has ncclCommSuspend, and says so in its log when not).
server_env=("${VLLM_CAPTURE_ENV[@]}"
            --env NCCL_DEBUG=INFO --env NCCL_DEBUG_SUBSYS=INIT)  # which transports NCCL chose, in the server's log
for kv in ${SERVER_ENV:-}; do server_env+=(--env "$kv"); done
serve() { # TP, then extra vLLM flags: sets SERVE, the server's command line
  local tp=$1; shift
  # shellcheck disable=SC2206
  SERVE=(vllm serve $MODEL --host 127.0.0.1 --port $PORT --enable-sleep-mode
         --worker-extension-cls stasis_engine.vllm.StasisWorkerExtension --max-model-len 4096
         --gpu-memory-utilization 0.5 --tensor-parallel-size "$tp" "$@" ${SERVER_ARGS:-})
}
capture() { # name, TP, extra stasis flags... [-- extra vLLM flags...]
  local name=$1 tp=$2; shift 2
  local flags=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  serve "$tp" "$@"
  step "capture-$name" "${CAPTURE_LIMIT:-420}" stasis capture "$name" --engine vllm \
    --ready-url http://127.0.0.1:$PORT/health --ready-timeout 400 --warmup 3 "${server_env[@]}" "${flags[@]}" \
    -- "${SERVE[@]}"
  if [ ! -d "$STASIS_HOME/snapshots/$name" ]; then
    local dir; dir=$(newest_instance)
    for f in "$dir"stdout.log "$dir"stderr.log; do [ -f "$f" ] && { echo "== $f"; tail -80 "$f"; }; done
    return 1
  fi
  local lines nccl ours
  # What the capture said of the workers: their parallel setup, the NCCL suspend, the CUDA checkpoint's phases.
  ours=$(grep -hE "workers \(tensor|NCCL communicators|comm-suspend|cuda-lock|cuda-checkpoint" \
    "$LOGS/capture-$name.log" 2>/dev/null | cut -c1-240) || true
  lines=$(grep -hE "allreduce|all-reduce|symmetric memory|nccl==|sleep freed|still in use|Graph capturing" \
    "$STASIS_HOME/snapshots/$name"/logs/*.log 2>/dev/null | sed 's/^.*\] //' | cut -c1-200 | sort | uniq -c) || true
  # NCCL's own account, folded: its version, each transport with how many channels took it, the communicators.
  nccl=$(grep -ohE "NCCL version [^ ]+|via [A-Za-z0-9/]+|Init COMPLETE|rank [0-9]+ nranks [0-9]+" \
    "$STASIS_HOME/snapshots/$name"/logs/*.log 2>/dev/null | sort | uniq -c) || true
  { stasis inspect "$name" || true
    node -e 'const m=require(process.argv[1]); console.log(JSON.stringify({gpu: m.gpu, tree: m.tree,
      ranks: m.engine.state.ranks, used: m.fingerprint.gpu && m.fingerprint.gpu.used}, null, 1))' \
      "$STASIS_HOME/snapshots/$name/manifest.json" || true
    printf '%s\n' "== stasis" "$ours" "== vLLM" "$lines" "== NCCL" "$nccl"
  } > "$LOGS/snapshot-$name.txt" 2>&1
  cat "$LOGS/snapshot-$name.txt"
}
NAME=vllm$SHAPE-tp$TP
BASE=vllm$SHAPE-tp1

if [ "${REFUSAL:-0}" = 1 ]; then
  # Custom all-reduce on: the capture must stop before it dumps anything, with the flag in its hint.
  serve "$TP"
  step refusal-custom-all-reduce "${CAPTURE_LIMIT:-420}" stasis capture "$NAME-refused" --engine vllm \
    --ready-url http://127.0.0.1:$PORT/health --ready-timeout 400 --warmup 1 "${server_env[@]}" \
    --env VLLM_ALLREDUCE_USE_SYMM_MEM=0 -- "${SERVE[@]}"
  if grep -q -- "--disable-custom-all-reduce" "$LOGS/refusal-custom-all-reduce.log"; then
    echo "refusal: PASS" | tee -a "$OUT/steps.txt"
  else
    echo "refusal: FAIL (no refusal naming --disable-custom-all-reduce)" | tee -a "$OUT/steps.txt"
  fi
fi

if has capture && [ ! -d "$STASIS_HOME/snapshots/$NAME" ]; then
  capture "$NAME" "$TP" --env VLLM_ALLREDUCE_USE_SYMM_MEM=0 -- --disable-custom-all-reduce ||
    { cat "$OUT/steps.txt"; exit 1; }
fi

restore_check() { # label, restore args...: restore (its canary checked), one more request, stop
  local label=$1; shift
  local json=$LOGS/restore-$label.json
  rm -f "$json"
  step "restore-$label" 300 bash -c 'stasis restore "$@" --json > "$0"' "$json" "$NAME" "$@"
  local id
  id=$(node -e 'try { console.log(require(process.argv[1]).instance.id) } catch { }' "$json")
  if [ -z "$id" ]; then
    echo "restore-$label: no instance"; cat "$json" 2>/dev/null || true; return 0
  fi
  node -e 'const j=require(process.argv[1]); console.log(JSON.stringify({readyMs: j.readyMs,
    phases: j.phases.map((p) => p.name + " " + Math.round(p.durationMs))}))' "$json" || true
  step "request-$label" 120 curl -sS -m 100 http://127.0.0.1:$PORT/v1/completions -H content-type:application/json \
    -d "{\"model\": \"$MODEL\", \"prompt\": \"Another question:\", \"max_tokens\": 8, \"temperature\": 0}"
  nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv || true
  stasis stop "$id" >/dev/null 2>&1 || true
}
if [ -d "$STASIS_HOME/snapshots/$NAME" ]; then
  has restore && restore_check same
  # The same GPUs in reverse order: each rank's GPU state onto the other's GPU.
  has move && restore_check reversed --gpu "$(seq -s, $((TP - 1)) -1 0)"
  if has bench; then
    step "bench-tp$TP" "${BENCH_LIMIT:-400}" stasis bench "$NAME" \
      --strategies "${STRATEGIES:-restore-hot,restore-cold}" \
      --repeat "${REPEAT:-3}" --out "$OUT/bench-tp$TP"
  fi
fi
# TP=1 of the same shape, same flags where they apply, for the restore time beside it.
if has baseline; then
  if [ ! -d "$STASIS_HOME/snapshots/$BASE" ]; then capture "$BASE" 1 || true; fi
  if [ -d "$STASIS_HOME/snapshots/$BASE" ]; then
    step bench-tp1 "${BENCH_LIMIT:-400}" stasis bench "$BASE" --strategies "${STRATEGIES:-restore-hot,restore-cold}" \
      --repeat "${REPEAT:-3}" --out "$LOGS/bench-tp1"
    cp "$LOGS/bench-tp1/results.md" "$OUT/bench-tp1.md" 2>/dev/null || true
  fi
fi
if [ "${KEEP:-1}" = 0 ]; then
  stasis rm "$NAME" >/dev/null 2>&1 || true
  stasis rm "$BASE" >/dev/null 2>&1 || true
fi
echo; echo "== results"
for f in "$LOGS/snapshot-$NAME.txt" "$OUT/bench-tp$TP/results.md" "$OUT/bench-tp1.md"; do
  [ -f "$f" ] && { echo "== $f"; cat "$f"; }
done
echo; cat "$OUT/steps.txt"
