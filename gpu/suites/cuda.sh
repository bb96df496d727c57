# Issue 4's GPU tests (a 4 GiB torch process, two CUDA processes in one tree, a restore refused for lack of
# GPU memory, and on a two-GPU machine a restore onto the other GPU). Measurements: $OUT/cuda-checkpoint.jsonl,
# as a table in $OUT/cuda-checkpoint.md (printed last).
# CUDA_TEST_SERVER_ENV="K=V ...": the 4 GiB test once more, its server started with that environment (e.g.
# GLIBC_TUNABLES=glibc.malloc.hugetlb=1), recorded beside the plain one.
# WRITERS="1 8 1 8": the tests once per entry, with STASIS_DUMP_WRITERS set to it (CRIU's parallel dump),
# alternating so that a noisy machine shows in both; PATTERN=... selects tests.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
LOGS=/tmp/stasis-logs && mkdir -p $LOGS
echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled), defrag $(cat /sys/kernel/mm/transparent_hugepage/defrag)" | tee "$OUT/machine.txt"
i=0
for w in ${WRITERS:-1}; do
  i=$((i + 1))
  step "cuda-tests-$i-w$w" 420 env STASIS_DUMP_WRITERS="$w" bash -c "cd /opt/stasis/app && node --test --test-reporter=spec --test-concurrency=1 ${PATTERN:+--test-name-pattern=\"$PATTERN\"} dist/cuda/checkpoint.gtest.js"
done
nvidia-smi --query-gpu=index,name,uuid,memory.used --format=csv
[ -f "$OUT/cuda-checkpoint.jsonl" ] && node bench/cuda-table.mjs "$OUT/cuda-checkpoint.jsonl" > "$OUT/cuda-checkpoint.md" && { echo; cat "$OUT/machine.txt" "$OUT/cuda-checkpoint.md"; }
echo; cat "$OUT/steps.txt"
