#!/usr/bin/env bash
# A manual CRIU round trip of a real vLLM CPU server serving the tiny model (root only).
#
#   examples/vllm-tiny/roundtrip.sh [WORKDIR]        (default /tmp/stasis-vllm-rt)
#
# Env: PORT (8765), CRIU (criu on PATH), EAGER (1: --enforce-eager, 0: torch.compile warm-up),
#      STASIS_VLLM_VENV (see scripts/vllm-cpu-env.sh; built if missing).
# Steps: build the venv and the model if needed -> launch `vllm serve` in its own session and PID
# namespace, logs to files -> wait for /health -> canary twice (determinism) -> refuse io_uring ->
# criu dump (kills the tree) -> keep the /dev/shm files CRIU needs -> delete them and vLLM's
# /tmp ZMQ socket files (as on a fresh host) -> put the kept files back -> criu restore ->
# canary must match byte for byte. Prints one JSON line of timings. Kills everything it started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/../.."
WORK="${1:-/tmp/stasis-vllm-rt}"
PORT="${PORT:-8765}"
EAGER="${EAGER:-1}"
CRIU="${CRIU:-$(command -v criu || true)}"
[[ -x "$CRIU" ]] || { echo "roundtrip: criu not found (set CRIU=/path/to/criu)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "roundtrip: needs root (CRIU)" >&2; exit 1; }

VENV="$("$ROOT/scripts/vllm-cpu-env.sh")"
MODEL="$WORK/model"
rm -rf "$WORK/img" "$WORK/work" "$WORK/shm" "$WORK"/*.log "$WORK"/*.pid "$WORK"/canary.*
mkdir -p "$WORK/img" "$WORK/work" "$WORK/shm"
ls /dev/shm > "$WORK/shm.start"; ls /tmp > "$WORK/tmp.start"
[[ -f "$MODEL/model.safetensors" ]] || "$VENV/bin/python" "$HERE/make_model.py" "$MODEL" >/dev/null

now() { date +%s.%N; }
since() { python3 -c "import sys; print(round($(now) - $1, 3))"; }
say() { echo "roundtrip: $*" >&2; }

ORIG_ROOT=""; RESTORED_ROOT=""; UNSHARE_PID=""
tree_of() { # pid and all descendants
  local p=$1; echo "$p"; for c in $(pgrep -P "$p" || true); do tree_of "$c"; done
}
stop_tree() { # SIGTERM the tree's root (its PID-namespace init), then SIGKILL what is left
  local r=$1 pids; [[ -n "$r" ]] && kill -0 "$r" 2>/dev/null || return 0
  pids="$(tree_of "$r")"
  kill -TERM "$r" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$r" 2>/dev/null || break; sleep 0.2; done
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}
cleanup() {
  stop_tree "$RESTORED_ROOT"; stop_tree "$ORIG_ROOT"
  [[ -n "$UNSHARE_PID" ]] && kill "$UNSHARE_PID" 2>/dev/null || true
  # vLLM leaks its shared-memory queues on exit; remove the ones this run used.
  if [[ -f "$WORK/shm.files" ]]; then while read -r f; do rm -f "$f"; done < "$WORK/shm.files"; fi
  # ... and named semaphores (sem.mp-*) that nothing maps any more.
  for f in /dev/shm/sem.mp-*; do
    [[ -e "$f" ]] && ! grep -qx "$(basename "$f")" "$WORK/shm.start" && ! grep -qsF "$f" /proc/[0-9]*/maps && rm -f "$f" || true
  done
  # vLLM leaves its ZMQ ipc socket files (/tmp/<uuid>) and torch.distributed FileStore files behind too.
  comm -13 "$WORK/tmp.start" <(ls /tmp) | grep -E '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' |
    while read -r s; do [[ -S "/tmp/$s" ]] && rm -f "/tmp/$s"; done || true
  comm -13 "$WORK/tmp.start" <(ls /tmp) | grep -E '^vllm_dist_[0-9a-f]{32}$' | while read -r s; do rm -f "/tmp/$s"; done || true
}
trap cleanup EXIT

canary() {
  curl -sf -m 120 "127.0.0.1:$PORT/v1/completions" -H 'content-type: application/json' -d "{\"model\":\"$MODEL\",
    \"prompt\":\"Hello world, the capital of France is\",\"max_tokens\":16,\"temperature\":0,\"logprobs\":1,\"ignore_eos\":true}" |
    python3 -c 'import sys, json; c = json.load(sys.stdin)["choices"][0]; print(json.dumps([c["text"], c["logprobs"]["token_logprobs"]]))'
}

export VLLM_SERVER_DEV_MODE=1 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1 UV_USE_IO_URING=0
args=(--host 127.0.0.1 --port "$PORT" --dtype float32 --max-model-len 512 --kv-cache-memory-bytes 67108864)
[[ "$EAGER" == 1 ]] && args+=(--enforce-eager)

say "launching vllm serve (venv $VENV)"
t0=$(now)
setsid unshare --pid --fork setsid "$VENV/bin/vllm" serve "$MODEL" "${args[@]}" </dev/null >"$WORK/server.log" 2>&1 &
UNSHARE_PID=$!
for _ in $(seq 1 60); do ORIG_ROOT="$(pgrep -P "$UNSHARE_PID" || true)"; [[ -n "$ORIG_ROOT" ]] && break; sleep 0.05; done
until curl -sf -m 2 "127.0.0.1:$PORT/health" >/dev/null; do
  kill -0 "$UNSHARE_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; say "server died"; exit 1; }
  [[ $(python3 -c "print(int($(now) - $t0))") -lt 600 ]] || { say "not ready after 600 s"; exit 1; }
  sleep 0.2
done
cold_start=$(since "$t0")
t=$(now); canary > "$WORK/canary.before"; first_answer=$(since "$t")
canary > "$WORK/canary.again"
cmp -s "$WORK/canary.before" "$WORK/canary.again" || { say "canary not deterministic before dump"; exit 1; }
say "ready in ${cold_start}s; canary $(cut -c1-60 "$WORK/canary.before")"

pids="$(tree_of "$ORIG_ROOT")"
for p in $pids; do
  fds="$(ls -l "/proc/$p/fd" 2>/dev/null || true)"
  if grep -q 'anon_inode:\[io_uring\]' <<<"$fds"; then
    say "pid $p holds io_uring (CRIU cannot dump it): is uvloop 0.23+ installed? see docs/vllm-cpu.md"; exit 1
  fi
done
# /dev/shm files mapped or open by the tree: CRIU records MAP_SHARED file mappings by path only.
for p in $pids; do
  awk '$6 ~ /^\/dev\/shm\// && $7 != "(deleted)" {print $6}' "/proc/$p/maps"
  for f in /proc/"$p"/fd/*; do readlink "$f" || true; done | grep '^/dev/shm/' | grep -v '(deleted)' || true
done | sort -u > "$WORK/shm.files"
ls /dev/shm > "$WORK/shm.before"

t=$(now)
"$CRIU" dump -t "$ORIG_ROOT" -D "$WORK/img" -o dump.log -v4 \
  --tcp-established --ext-unix-sk --file-locks --link-remap
dump_s=$(since "$t")
ORIG_ROOT=""; UNSHARE_PID=""
# Keep what the restore needs: the shared-memory queues and CRIU's link_remap.N files (consumed by each restore).
while read -r f; do cp --sparse=always -p "$f" "$WORK/shm/"; done < "$WORK/shm.files"
for f in /dev/shm/link_remap.*; do
  if [[ -e "$f" ]] && ! grep -qx "$(basename "$f")" "$WORK/shm.before"; then cp -p "$f" "$WORK/shm/"; echo "$f" >> "$WORK/shm.files"; fi
done
image_mb=$(du -sm "$WORK/img" | cut -f1)
say "dumped in ${dump_s}s, image ${image_mb} MB, kept: $(tr '\n' ' ' < "$WORK/shm.files")"

# As on a fresh host: none of vLLM's /dev/shm queues, CRIU remaps or /tmp ZMQ socket files are left.
while read -r f; do rm -f "$f"; done < "$WORK/shm.files"
comm -13 "$WORK/tmp.start" <(ls /tmp) | grep -E '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' |
  while read -r s; do [[ -S "/tmp/$s" ]] && rm -f "/tmp/$s"; done || true

t=$(now)
while read -r f; do cp --sparse=always -p "$WORK/shm/$(basename "$f")" "$f"; done < "$WORK/shm.files"
exec 3>>"$WORK/server.restored.log"
"$CRIU" restore -D "$WORK/img" -W "$WORK/work" -o restore.log -v4 \
  --tcp-established --ext-unix-sk --file-locks --restore-detached --pidfile "$WORK/restored.pid" \
  --inherit-fd "fd[3]:${WORK#/}/server.log"
exec 3>&-
RESTORED_ROOT="$(cat "$WORK/restored.pid")"
restore_s=$(since "$t")
t2=$(now); canary > "$WORK/canary.after"; answer_after=$(since "$t2"); to_answer=$(since "$t")
if cmp -s "$WORK/canary.before" "$WORK/canary.after"; then match=true; else match=false; fi
printf '{"cold_start_s": %s, "first_answer_after_ready_s": %s, "dump_s": %s, "image_mb": %s, "restore_s": %s, "first_answer_after_restore_s": %s, "restore_to_answer_s": %s, "canary_match": %s}\n' \
  "$cold_start" "$first_answer" "$dump_s" "$image_mb" "$restore_s" "$answer_after" "$to_answer" "$match"
$match
