# GPU capture/restore by hand (diag), the CUDA checkpoint tests, the reference engine's tiny pipeline.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
step diag 200 bash gpu/suites/diag.sh
step cuda-tests 360 bash -c "cd /opt/stasis/app && node --test --test-reporter=spec --test-concurrency=1 dist/cuda/checkpoint.gtest.js"
SKIP_REF_TESTS=1 STARTUP_LIMIT=1 bash gpu/suites/reference.sh || true
