# The real vLLM as a fleet runs it, from snapshots an earlier call kept (gpu/suites/vllm-levers.sh with KEEP=1):
#   1. restore-hot through `stasis serve`, the daemon's CUDA worker started per restore against kept warm
#      (--warm-cuda), rounds interleaved;
#   2. replicas: one restore into a namespace of its own (--publish) against two at once on the one GPU, each
#      answering a completion at its own host port;
#   3. parked instances and swaps (bench/park-swap.mjs): plain restore against a take of a parked instance, and with
#      B (a snapshot of another model at another address) swaps both ways (hibernate one, wake the other).
# Knobs: A (snapshot, required), B (second snapshot for swaps; captured from SWAP_MODEL at port 8001 when missing), ROUNDS (2), REPEAT (3), PARK_REPEAT (5),
# PARTS ("gaps warm replicas park": which parts run; gaps: where CRIU's time goes in one restore), WARM_CUDA (1: the park part's daemon keeps its CUDA worker warm).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
source gpu/vllm/env.sh
A=${A:?A: the snapshot to restore}
B=${SWAP:-}
PARTS=${PARTS:-gaps warm replicas park}
has() { [[ " $PARTS " == *" $1 "* ]]; }
daemon=
start_daemon() { # flags...
  stasis serve --pin-weights "$@" 2>> "$LOGS/serve.log" & daemon=$!
  for _ in $(seq 1 100); do curl -sf --unix-socket "$STASIS_HOME/stasisd.sock" http://d/v1/health >/dev/null && return 0; sleep 0.1; done
}
stop_daemon() { [ -n "$daemon" ] && { kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; }; daemon=; }
trap 'stop_daemon; STASIS_NO_DAEMON=1 stasis stop --all --grace 5 >/dev/null 2>&1 || true' EXIT
summary() { sed -n '/^| strategy/,/^$/p;/restore-hot\*\* phases/,/^| first-token/p' "$1" 2>/dev/null || true; }

if has gaps; then
  # Where CRIU's part of one restore goes (its -v4 log's largest gaps), on the host's network, no daemon.
  touch /tmp/gaps-mark
  STASIS_NO_DAEMON=1 stasis restore "$A" --json > "$LOGS/gaps.json" 2>&1 || true
  log=$(find "$STASIS_HOME" -name criu-restore.log -newer /tmp/gaps-mark 2>/dev/null | sed -n 1p)
  [ -n "$log" ] && node bench/criu-log-gaps.mjs "$log" 25 > "$OUT/criu-gaps.txt" 2>&1
  STASIS_NO_DAEMON=1 stasis stop --all --grace 10 >/dev/null 2>&1 || true
fi

if has warm; then
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for mode in per-restore warm; do
      flags=(); [ $mode = warm ] && flags=(--warm-cuda)
      start_daemon "${flags[@]}"
      step "bench-$mode-$round" 300 stasis bench "$A" --strategies restore-hot --repeat "${REPEAT:-3}" --via api \
        --out "$LOGS/bench-$mode-$round"
      stop_daemon
      mkdir -p "$OUT/bench"; cp "$LOGS/bench-$mode-$round/results.json" "$OUT/bench/$mode-$round.json" 2>/dev/null || true
    done
  done
fi

# One completion from a replica at its published URL: the first tokens' text, or the error.
ask() { # URL (http://HOST:PORT)
  curl -s -m 20 "$1/v1/completions" -H 'content-type: application/json' \
    -d '{"model": "'"$(curl -s -m 5 "$1/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"'", "prompt": "replica", "max_tokens": 4, "temperature": 0}' |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(repr(r["choices"][0]["text"]))' 2>&1 | sed -n 1p
}
# restore --json -> "readyMs criuMs cudaMs published id"
fields() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!r.instance) { console.log("failed - - - -"); console.error(JSON.stringify(r.error ?? r).slice(0, 3000)); process.exit(0); }
    const ms = (n) => { const p = r.phases.find((x) => x.name === n); return p ? Math.round(p.endMs - p.startMs) : "-"; };
    console.log([Math.round(r.readyMs), ms("criu-restore"), ms("cuda-restore"), r.instance.network?.published ?? r.instance.url, r.instance.id].join(" "));
  ' "$1"
}
if has replicas; then
  : > "$OUT/replicas.txt"
  export STASIS_NO_DAEMON=1
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for n in 1 2; do
      pids=()
      for i in $(seq 1 $n); do
        timeout 120 stasis restore "$A" --publish 127.0.0.1 --json > "$LOGS/rep-$n-$i.json" 2> "$LOGS/rep-$n-$i.err" & pids+=($!)
      done
      for p in "${pids[@]}"; do wait "$p" || true; done
      for i in $(seq 1 $n); do
        read -r ready criu cuda addr id <<< "$(fields "$LOGS/rep-$n-$i.json" 2>> "$OUT/replicas-errors.txt")"
        answer=$( [ "$ready" != failed ] && ask "$addr" || tail -3 "$LOGS/rep-$n-$i.err" | tr '\n' ' ' | cut -c1-400)
        printf 'round %s  %s at once  replica %s  ready %s ms  criu %s ms  cuda %s ms  at %s  answer %s\n' \
          "$round" "$n" "$i" "$ready" "$criu" "$cuda" "$addr" "$answer" | tee -a "$OUT/replicas.txt"
      done
      nvidia-smi --query-gpu=memory.used --format=csv,noheader | sed "s/^/  GPU memory used with $n: /" | tee -a "$OUT/replicas.txt"
      stasis stop --all --grace 10 >/dev/null 2>&1 || true
    done
  done
  unset STASIS_NO_DAEMON
fi

if has park && [ -n "$B" ] && [ -n "${SWAP_MODEL:-}" ] && [ ! -d "$STASIS_HOME/snapshots/$B" ]; then
  # The second model of the swaps, at another address (a parked instance holds its captured address).
  step "capture-$B" "${CAPTURE_LIMIT:-240}" stasis capture "$B" --engine vllm --ready-url http://127.0.0.1:8001/health \
    --ready-timeout 230 --warmup 3 "${VLLM_CAPTURE_ENV[@]}" -- \
    vllm serve "$SWAP_MODEL" --host 127.0.0.1 --port 8001 --enable-sleep-mode \
    --worker-extension-cls stasis_engine.vllm.StasisWorkerExtension --max-model-len 4096 --gpu-memory-utilization 0.45
fi
if has park; then
  # park-swap.mjs imports the built CLI from the folder above it: run it beside the unpacked app.
  mkdir -p /opt/stasis/app/bench && cp bench/park-swap.mjs /opt/stasis/app/bench/
  flags=(); [ "${WARM_CUDA:-1}" = 1 ] && flags=(--warm-cuda)
  start_daemon "${flags[@]}"
  step park-swap 420 node /opt/stasis/app/bench/park-swap.mjs "$A" ${B:+"$B"} --repeat "${PARK_REPEAT:-5}" \
    --out "$OUT/park-swap"
  stop_daemon
fi

echo; echo "== results"
has gaps && { echo "== CRIU's restore, largest gaps"; head -40 "$OUT/criu-gaps.txt" 2>/dev/null; }
if has warm; then
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for mode in per-restore warm; do echo; echo "== $mode round $round"; summary "$LOGS/bench-$mode-$round/results.md"; done
  done
fi
has replicas && { echo; echo "== replicas"; cat "$OUT/replicas.txt"; head -c 4000 "$OUT/replicas-errors.txt" 2>/dev/null; }
has park && { echo; echo "== park-swap"; tail -14 "$LOGS/park-swap.log" 2>/dev/null || true; }
nvidia-smi --query-gpu=memory.used --format=csv,noheader | sed 's/^/GPU memory used at the end: /' | tee -a "$OUT/steps.txt"
echo; cat "$OUT/steps.txt"
