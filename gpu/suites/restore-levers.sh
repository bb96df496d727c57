# The restore's levers, measured on one capture of the 3B reference engine (one CUDA graph size, for a shorter
# compile): restores with digest verification full vs none, lazy pages (userfaultfd); what the
# restored tree holds in memory; where CRIU's restore spends its time; sleep 1 and sleep 2 + refill on the 3B
# server with answers compared. Table printed last.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
MODEL=/var/tmp/ref-3b
PORT=8300
echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled) defrag: $(cat /sys/kernel/mm/transparent_hugepage/defrag)"
step make-3b 120 python3 -m stasis_engine.reference make-model --config 3b --out $MODEL --device cuda
step capture-3b "${CAPTURE_LIMIT:-200}" stasis capture ref3b --engine vllm --ready-url http://127.0.0.1:$PORT/health --ready-timeout 180 --warmup 3 -- python3 -m stasis_engine.reference serve --model-dir $MODEL --port $PORT --device cuda ${SERVER_ARGS:---cuda-graph-sizes 1}
( cd $STASIS_HOME/snapshots/ref3b && ls -la images | sort -k5 -n | tail -3 && du -sh images weights caches ) 2>&1 | tee "$OUT/levers.txt" || true
rows=()
variant() { # label, env..., -- restore args...
  local label=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  # Labels starting with "cold": the page cache is dropped first; the others restore with the files in it.
  case $label in cold*) sync; echo 3 > /proc/sys/vm/drop_caches ;; *) stasis prefetch --snapshot ref3b >/dev/null ;; esac
  [ -n "${THP:-}" ] && echo "$THP" > /sys/kernel/mm/transparent_hugepage/enabled
  local t0=$(date +%s%N)
  env "${envs[@]}" stasis restore ref3b --json "$@" > "$LOGS/$label.json" 2> "$LOGS/$label.err" || tail -3 "$LOGS/$label.err"
  echo "$label: stasis restore wall $(( ($(date +%s%N) - t0) / 1000000 )) ms" >> "$LOGS/wall.txt"
  [ -n "${THP:-}" ] && echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
  rows+=("$label=$LOGS/$label.json")
  local dir; dir=$(newest_instance)
  if [ -n "$dir" ] && [ -f "$dir/criu-restore.log" ]; then
    echo "== $label" >> "$LOGS/gaps.txt"; node bench/criu-log-gaps.mjs "$dir/criu-restore.log" 10 >> "$LOGS/gaps.txt" 2>&1 || true
  fi
  if [ "$label" = "${SMAPS_OF:-full}" ]; then
    local pid; pid=$(stasis ps --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const a=j.instances??j;console.log(a[0]?.pid??"")})')
    [ -n "$pid" ] && python3 bench/smaps_summary.py "$pid" 14 > "$LOGS/smaps.txt" 2>&1 || true
    if [ -n "${SLEEP_TEST:-1}" ]; then
      w=$(ls $STASIS_HOME/snapshots/ref3b/weights/* | sed -n 1p)
      timeout 120 python3 bench/sleep_levels.py http://127.0.0.1:$PORT "$w" > "$LOGS/sleep.txt" 2>&1 || echo "sleep test rc=$?" >> "$LOGS/sleep.txt"
    fi
  fi
  stasis stop --all >/dev/null 2>&1 || true
}
# Labels starting with "cold" drop the page cache first (sync; echo 3 > /proc/sys/vm/drop_caches: a one-off action).
# VARIANTS: "label[:THP]|restore args[|ENV=V ...]" entries separated by ';' (THP: the transparent_hugepage mode set for
# that restore only and put back to madvise after; the suite says so in its output).
IFS=';' read -ra list <<< "${VARIANTS:-full|--verify full;none|--verify none;lazy|--verify none --lazy-pages}"
for v in "${list[@]}"; do
  IFS='|' read -r head args envs <<< "$v"
  label=${head%%:*}; thp=""; [ "$head" != "$label" ] && thp=${head#*:}
  [ -n "$thp" ] && echo "note: transparent_hugepage set to $thp for restore $label, then back to madvise"
  # shellcheck disable=SC2086
  THP=$thp variant "$label" $envs -- $args
done
{
  echo "== restores"; node bench/phase-table.mjs "${rows[@]}"; cat "$LOGS/wall.txt"
  echo; echo "== memory of the restored tree"; cat "$LOGS/smaps.txt" 2>/dev/null
  echo; echo "== sleep levels on the restored 3B server"; cat "$LOGS/sleep.txt" 2>/dev/null
} >> "$OUT/levers.txt"
cp "$LOGS/gaps.txt" "$OUT/criu-gaps.txt" 2>/dev/null || true
cp "$LOGS/${SMAPS_OF:-full}.json" "$OUT/" 2>/dev/null || true
echo; echo "== results"; cat "$OUT/levers.txt"; echo; cat "$OUT/steps.txt"
