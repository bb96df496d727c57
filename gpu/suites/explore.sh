# First look on a GPU machine: doctor, the CUDA checkpoint tests, the weights tests and benchmark,
# the page-cache benchmark. Prints a summary table last.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
step doctor 60 stasis doctor
step cuda-tests 300 bash -c "cd /opt/stasis/app && node --test --test-reporter=spec --test-concurrency=1 dist/cuda/checkpoint.gtest.js"
step weights-tests 120 bash -c "cd python && python3 -m pytest -q -x tests/gpu/test_weights_gpu.py"
step weights-bench 240 bash -c "cd python && python3 ../bench/weights_bench.py --out $OUT/weights --budget-s 150"
echo; echo "== results"
cat "$OUT"/cuda-checkpoint.jsonl 2>/dev/null | cut -c1-600 || true
[ -f "$OUT/weights/results.md" ] && cat "$OUT/weights/results.md"
echo; cat "$OUT/steps.txt"
