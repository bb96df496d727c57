# Issue 4's GPU tests (a 4 GiB torch process, two CUDA processes in one tree, a restore refused for lack of
# GPU memory, and on a two-GPU machine a restore onto the other GPU). Measurements: $OUT/cuda-checkpoint.jsonl.
# CUDA_TEST_SERVER_ENV="K=V ...": the 4 GiB test once more, its server started with that environment (e.g.
# GLIBC_TUNABLES=glibc.malloc.hugetlb=1), recorded beside the plain one.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
LOGS=/tmp/stasis-logs && mkdir -p $LOGS
step cuda-tests 420 bash -c "cd /opt/stasis/app && node --test --test-reporter=spec --test-concurrency=1 ${PATTERN:+--test-name-pattern=\"$PATTERN\"} dist/cuda/checkpoint.gtest.js"
nvidia-smi --query-gpu=index,name,uuid,memory.used --format=csv
echo; cat "$OUT/steps.txt"
