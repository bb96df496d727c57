# The CUDA checkpoint's GPU tests (a 4 GiB torch process, two CUDA processes in one tree, a restore refused for lack of
# GPU memory, and on a two-GPU machine a restore onto the other GPU). Measurements: $OUT/cuda-checkpoint.jsonl,
# as a table in $OUT/cuda-checkpoint.md (printed last).
# CUDA_TEST_SERVER_ENV="K=V ...": the 4 GiB test once more, its server started with that environment (e.g.
# GLIBC_TUNABLES=glibc.malloc.hugetlb=1), recorded beside the plain one. RUNS=N: the tests N times (these machines
# are noisy); PATTERN=... selects tests.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
LOGS=/tmp/stasis-logs && mkdir -p $LOGS
echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled), defrag $(cat /sys/kernel/mm/transparent_hugepage/defrag)" | tee "$OUT/machine.txt"
for i in $(seq 1 "${RUNS:-1}"); do
  step "cuda-tests-$i" 420 bash -c "cd /opt/stasis/app && node --test --test-reporter=spec --test-concurrency=1 ${PATTERN:+--test-name-pattern=\"$PATTERN\"} dist/cuda/checkpoint.gtest.js"
done
nvidia-smi --query-gpu=index,name,uuid,memory.used --format=csv
[ -f "$OUT/cuda-checkpoint.jsonl" ] && node bench/cuda-table.mjs "$OUT/cuda-checkpoint.jsonl" > "$OUT/cuda-checkpoint.md" && { echo; cat "$OUT/machine.txt" "$OUT/cuda-checkpoint.md"; }
echo; cat "$OUT/steps.txt"
