# The weights loader on this GPU: its GPU tests (bit-exact refills), then bench/weights_bench.py side by side
# with the baselines, once per way of filling the page cache for the hot case. Prints each run's table and the stages
# of our hot and cold loads.
# Knobs: FILLS (weights_bench --hot-fill values, default "written"), ONLY (--only, default the methods of
# docs/benchmarks.md's table), REPEAT (hot runs, default 5), COLD (cold runs, default 3; 0: hot only), TESTS=0
# (skip the GPU tests), REFERENCE=1 (also the reference engine's refill, adoption and keeper GPU tests, which run the
# same loader).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
{
  findmnt -T /var/tmp -o TARGET,SOURCE,FSTYPE,OPTIONS | tail -1
  echo "THP enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
} | tee "$OUT/machine.txt"
[ "${TESTS:-1}" = 0 ] || step gpu-tests 90 bash -c "cd python && python3 -m pytest -q -x tests/gpu/test_weights_gpu.py"
[ "${REFERENCE:-0}" = 0 ] || step gpu-tests-reference 240 bash -c \
  "cd python && python3 -m pytest -q -x tests/gpu/test_reference_gpu.py -k 'refill or adopt or keeper'"
COLD=${COLD:-3}
cold_args=$([ "$COLD" = 0 ] && echo --no-cold || echo "--cold-repeat $COLD")
for fill in ${FILLS:-written}; do
  step "weights-$fill" 300 bash -c "cd python && python3 ../bench/weights_bench.py --dir /var/tmp --repeat ${REPEAT:-5} \
    $cold_args --budget-s 200 --hot-fill $fill --only '${ONLY:-stasis auto,safetensors,plain,disk read,link}' \
    --out $OUT/weights-$fill"
  grep -h "FileHugePages\|FilePmdMapped" /proc/meminfo | sed "s/^/after $fill: /" >> "$OUT/machine.txt"
done
for fill in ${FILLS:-written}; do
  echo
  echo "== hot fill: $fill"
  r=$OUT/weights-$fill/results.md
  [ -f "$r" ] || { echo "(no results: see $OUT/weights-$fill.log)"; continue; }
  grep -E '^\| (method|---|stasis|safetensors|plain|disk|pinned|the link)' "$r"
  grep -E '^Targets' "$r" || true
  grep -E '^- (hot|cold) stasis auto' "$r" | cut -c1-400
done
echo
cat "$OUT/machine.txt"
for t in gpu-tests gpu-tests-reference; do [ -f "$OUT/$t.log" ] && tail -2 "$OUT/$t.log"; done
cat "$OUT/steps.txt"
