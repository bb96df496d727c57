# The whole pipeline on the GPU: the reference engine with Llama-3.2-3B's shape, captured with stasis, then
# `stasis bench` (cold, warm, restore-hot, restore-cold side by side). Results in $OUT/bench; table printed last.
# Knobs: STAGE_TEST, STRATEGIES, REPEAT, VERIFY (auto|full|size|none), SERVER_ARGS (e.g. "--cuda-graph-sizes 1" for a shorter
# compile; restores only: STRATEGIES=restore-hot,restore-cold), CAPTURE_LIMIT, BENCH_LIMIT (seconds), BENCH_ARGS
# (more `stasis bench` arguments), COMPARE (below).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home LOGS=/tmp/stasis-logs
mkdir -p "$LOGS"
# How fast this machine fills fresh memory (what CRIU's restore of the image does): a tmpfs file written twice.
for i in 1 2; do dd if=/dev/zero of=/dev/shm/stasis-touch bs=1M count=4096 2>&1 | tail -1 | sed "s/^/fresh-memory fill $i: /"; rm -f /dev/shm/stasis-touch; done | tee "$OUT/machine.txt"
[ -n "${CONTEXT:-}" ] && step gpu-context 90 bash -c "python3 bench/gpu_context.py > $OUT/gpu-context.txt 2>&1"
# STAGE_TEST=1: the reference engine's GPU tests of refilled and staged (adopted) weights first (tiny model; STAGE_TEST_K: another
# pytest -k filter).
[ -n "${STAGE_TEST:-}" ] && step stage-test 240 bash -c "cd python && python3 -m pytest -q -x tests/gpu/test_reference_gpu.py -k '${STAGE_TEST_K:-refill or adopt or keeper}' 2>&1 | tee $LOGS/stage-test.txt"
MODEL=/var/tmp/ref-3b
PORT=8300
step make-3b 120 python3 -m stasis_engine.reference make-model --config 3b --out $MODEL --device cuda
step capture-3b "${CAPTURE_LIMIT:-300}" stasis capture ref3b --engine vllm --ready-url http://127.0.0.1:$PORT/health --ready-timeout 280 --warmup 3 -- python3 -m stasis_engine.reference serve --model-dir $MODEL --port $PORT --device cuda ${SERVER_ARGS:-}
# A failed capture: the server's output into $OUT, one more try, and no benches if that fails too.
capture_failed() {
  local dir; dir=$(newest_instance)
  for f in "$dir"stdout.log "$dir"stderr.log; do [ -f "$f" ] && { echo "== $f"; tail -40 "$f"; }; done >> "$OUT/capture-failure.txt" 2>&1 || true
}
if [ ! -d $STASIS_HOME/snapshots/ref3b ]; then
  capture_failed
  step capture-3b-again "${CAPTURE_LIMIT:-300}" stasis capture ref3b --engine vllm --ready-url http://127.0.0.1:$PORT/health --ready-timeout 280 --warmup 3 -- python3 -m stasis_engine.reference serve --model-dir $MODEL --port $PORT --device cuda ${SERVER_ARGS:-}
  [ -d $STASIS_HOME/snapshots/ref3b ] || { capture_failed; cat "$OUT/capture-failure.txt" "$OUT/steps.txt"; exit 1; }
fi
( cd $STASIS_HOME/snapshots/ref3b 2>/dev/null && ls -la images | sort -k5 -n | tail -8 && du -sh images weights caches 2>/dev/null && grep -h "stasis-startup\|stasis-sleep" logs/capture-stdout.log logs/capture-stderr.log | cut -c1-1500 ) | tee "$OUT/image-sizes.txt" || true
# FIRST_GAPS=1: the first restore after the capture (slower than the rest: 2.6-2.9 s), with its CRIU log's gaps,
# before the bench (whose first restore is then not the first after capture).
if [ -n "${FIRST_GAPS:-}" ]; then
  step restore-first 60 stasis restore ref3b
  dir=$(newest_instance)
  { for f in criu-restore criu-lazy-pages; do [ -f "$dir/$f.log" ] && node bench/criu-log-gaps.mjs "$dir/$f.log" 8; done; } > "$OUT/criu-gaps-first.txt" 2>&1 || true
  stasis stop --all >/dev/null 2>&1 || true
fi
step bench-3b "${BENCH_LIMIT:-420}" stasis bench ref3b --strategies "${STRATEGIES:-cold,warm,restore-hot,restore-cold}" --repeat "${REPEAT:-2}" --repeat-starts 1 --verify "${VERIFY:-auto}" ${BENCH_ARGS:-} --out "$OUT/bench"
# COMPARE="label|bench args|ENV=V ...|strategies;...": benches of the same snapshot right after (strategies: that
# bench's, else COMPARE_STRATEGIES, else restore-hot,restore-cold), e.g.
# "copy|--memory copy" or "ws0||STASIS_WORKING_SET=0" or "serve||" (a label starting with "serve" runs a
# `stasis serve` for that bench) (one tarball each in $OUT, to keep the number of files the device tool brings
# back small). CONTEXT=1: bench/gpu_context.py first (what a bare CUDA context holds, and smaller stack limits).
IFS=';' read -ra compare <<< "${COMPARE:-}"
for c in "${compare[@]}"; do
  IFS='|' read -r label args envs strategies <<< "$c"
  # Labels starting with "serve": a `stasis serve` runs during that bench (its restores go through it).
  daemon=""
  case $label in serve*) env $envs stasis serve 2> "$LOGS/serve-$label.log" & daemon=$!; sleep 2 ;; esac
  # shellcheck disable=SC2086
  step "bench-$label" "${BENCH_LIMIT:-420}" env $envs stasis bench ref3b --strategies "${strategies:-${COMPARE_STRATEGIES:-restore-hot,restore-cold}}" --repeat "${REPEAT:-2}" --verify "${VERIFY:-auto}" $args --out "$LOGS/bench-$label"
  [ -n "$daemon" ] && { kill "$daemon"; wait "$daemon" 2>/dev/null || true; cp "$LOGS/serve-$label.log" "$LOGS/bench-$label/" 2>/dev/null || true; }
  tar -C "$LOGS" -czf "$OUT/bench-$label.tgz" "bench-$label" || true
done
# GAPS=1: one more hot restore, and where its CRIU restore (and the lazy-pages daemon) spent the time.
if [ -n "${GAPS:-}" ]; then
  stasis prefetch --snapshot ref3b >/dev/null
  step restore-gaps 60 stasis restore ref3b
  dir=$(newest_instance)
  { for f in criu-restore criu-lazy-pages; do [ -f "$dir/$f.log" ] && node bench/criu-log-gaps.mjs "$dir/$f.log" 12; done
    echo "CRIU's kerndat cache: $(findmnt -n -o FSTYPE -T /run) /run; $(grep -h -m1 "kdat" "$dir/criu-restore.log")"; } > "$OUT/criu-gaps.txt" 2>&1 || true
  stasis stop --all >/dev/null 2>&1 || true
fi
# COLD_GAPS=1: one more restore from a cold page cache (a `stasis restore` process, defaults), and where its CRIU
# restore and lazy-pages daemon spent the time: in restore-cold CRIU runs 4 s before its prefill (the prefill
# itself ~0.1 s), against 0.2 s hot, and which of its steps wait for the disk is the next question.
if [ -n "${COLD_GAPS:-}" ]; then
  sync; echo 3 > /proc/sys/vm/drop_caches
  step restore-cold-gaps 90 stasis restore ref3b
  dir=$(newest_instance)
  { for f in criu-restore criu-lazy-pages; do [ -f "$dir/$f.log" ] && node bench/criu-log-gaps.mjs "$dir/$f.log" 25; done; } > "$OUT/criu-gaps-cold.txt" 2>&1 || true
  # Which files that restore read into the page cache (the snapshot's, and every other: libraries, Python, CRIU).
  site=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
  dirs=(); for d in /usr/lib/x86_64-linux-gnu /usr/bin /usr/sbin /usr/local/bin /usr/local/lib "$STASIS_HOME" "$PWD/python" $site; do [ -d "$d" ] && dirs+=("$d"); done
  { echo "== files resident after a restore from a cold page cache"; stasis residency --json "${dirs[@]}" 2>/dev/null | node bench/resident-top.mjs 40; } >> "$OUT/criu-gaps-cold.txt" 2>&1 || true
  stasis stop --all >/dev/null 2>&1 || true
fi
echo; echo "== results"; cat "$OUT/machine.txt" "$OUT/image-sizes.txt" 2>/dev/null || true
[ -f "$OUT/criu-gaps-first.txt" ] && { echo "== the first restore after the capture"; cat "$OUT/criu-gaps-first.txt"; grep -A30 "restore-first" "$OUT/steps.txt" >/dev/null; }
[ -f "$OUT/criu-gaps.txt" ] && cat "$OUT/criu-gaps.txt"
[ -f "$OUT/criu-gaps-cold.txt" ] && { echo "== a restore from a cold page cache"; cat "$OUT/criu-gaps-cold.txt"; }
[ -f "$OUT/gpu-context.txt" ] && cat "$OUT/gpu-context.txt"
[ -f "$OUT/bench/results.md" ] && cat "$OUT/bench/results.md"
for c in "${compare[@]}"; do
  label=${c%%|*}; echo; echo "== compare: $c"; sed -n '/^| strategy/,/^$/p;/restore-hot\*\* phases/,/^| first-token/p' "$LOGS/bench-$label/results.md" 2>/dev/null || true
done
echo; cat "$OUT/steps.txt"
